/*
 * test_policy.c - the policy state machine and the adaptive controller,
 * driven by a fake clock; and the no-lost-wake-up rule on a real ring.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "guestmem.h"
#include "policy.h"

#define US 1000ull
#define MS 1000000ull

static void test_parse(void)
{
    struct policy p;
    char err[200];
    CHECK(policy_parse("notify", &p, err, sizeof(err)) == 0 && p.mode == POLICY_NOTIFY, "notify");
    CHECK(policy_parse("poll", &p, err, sizeof(err)) == 0 && p.mode == POLICY_POLL, "poll");
    CHECK(policy_parse("interval:250", &p, err, sizeof(err)) == 0 && p.mode == POLICY_INTERVAL &&
          p.arg_us == 250, "interval:250");
    CHECK(policy_parse("interval", &p, err, sizeof(err)) == 0 &&
          p.arg_us == POLICY_DEFAULT_INTERVAL_US, "interval default");
    CHECK(policy_parse("adaptive", &p, err, sizeof(err)) == 0 && p.mode == POLICY_ADAPTIVE &&
          p.arg_us == POLICY_DEFAULT_LATENCY_US, "adaptive default budget");
    CHECK(policy_parse("adaptive:20", &p, err, sizeof(err)) == 0 && p.arg_us == 20, "adaptive:20");
    const char *bad[] = { "", "fast", "interval:", "interval:0", "interval:-5", "interval:10x",
                          "poll:5", "notify:1", "interval:99999999", ":5" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(policy_parse(bad[i], &p, err, sizeof(err)) < 0 && err[0], "'%s' refused", bad[i]);
    struct policy q = { POLICY_INTERVAL, 123 };
    struct policy r = policy_unpack(policy_pack(&q));
    CHECK(r.mode == q.mode && r.arg_us == q.arg_us, "pack round trip");
    char buf[32];
    CHECK(strcmp(policy_str(&q, buf, sizeof(buf)), "interval:123") == 0, "policy_str");
}

static void test_interval_state_machine(void)
{
    struct qpolicy s = { 0 };
    uint64_t idle = 1 * MS, t = 10 * MS;
    /* A kick arrives: the first pass moves frames, the queue turns timer-driven. */
    CHECK(qpolicy_after_pass(&s, EFF_INTERVAL, t, 5, false, idle) == QP_KEEP_ACTIVE && s.active,
          "kick switches to timer service");
    /* Empty ticks before the idle period stay active. */
    for (uint64_t k = 1; k * 100 * US < idle; k++)
        CHECK(qpolicy_after_pass(&s, EFF_INTERVAL, t + k * 100 * US, 0, false, idle) ==
              QP_KEEP_ACTIVE, "empty tick %llu stays", (unsigned long long)k);
    /* Work in between restarts the idle clock. */
    CHECK(qpolicy_after_pass(&s, EFF_INTERVAL, t + 900 * US, 1, false, idle) == QP_KEEP_ACTIVE,
          "work");
    CHECK(qpolicy_after_pass(&s, EFF_INTERVAL, t + 1800 * US, 0, false, idle) == QP_KEEP_ACTIVE,
          "0.9 ms after the last work: still active");
    CHECK(qpolicy_after_pass(&s, EFF_INTERVAL, t + 1900 * US, 0, false, idle) == QP_TRY_SLEEP,
          "1 ms idle: back to kicks");
    /* Leftover work is never a reason to sleep. */
    struct qpolicy m = { 0 };
    qpolicy_after_pass(&m, EFF_INTERVAL, t, 256, true, idle);
    CHECK(qpolicy_after_pass(&m, EFF_INTERVAL, t + 5 * MS, 0, true, idle) == QP_KEEP_ACTIVE,
          "more work pending keeps the queue active");
    /* Poll never sleeps; notify sleeps whenever the ring is drained. */
    struct qpolicy p = { 0 };
    CHECK(qpolicy_after_pass(&p, EFF_POLL, t, 0, false, idle) == QP_KEEP_ACTIVE &&
          qpolicy_after_pass(&p, EFF_POLL, t + 60 * 1000 * MS, 0, false, idle) == QP_KEEP_ACTIVE,
          "poll never falls back");
    struct qpolicy n = { 0 };
    CHECK(qpolicy_after_pass(&n, EFF_NOTIFY, t, 3, false, idle) == QP_TRY_SLEEP && !n.active,
          "notify sleeps once drained");
    CHECK(qpolicy_after_pass(&n, EFF_NOTIFY, t, 256, true, idle) == QP_KEEP_ACTIVE,
          "notify keeps going with work left");
    /* A queue waking from a long sleep does not count the sleep as idle time. */
    struct qpolicy w = { 0 };
    qpolicy_after_pass(&w, EFF_NOTIFY, t, 1, false, idle);
    CHECK(qpolicy_after_pass(&w, EFF_INTERVAL, t + 10 * 1000 * MS, 0, false, idle) ==
              QP_KEEP_ACTIVE, "first timer pass after a kick is not idle");
}

/* The race the fall-back must survive: the guest posts a buffer right
 * after our last empty pass and before kicks are re-enabled.  It does not
 * kick (kicks were off), so the backend must see the buffer itself. */
static void test_no_lost_wakeup(void)
{
    struct fake_guest g;
    CHECK(fake_guest_init(&g, 1 << 20, 64) == 0, "fake guest");
    for (int ev = 0; ev < 2; ev++) {
        g.vq.event_idx = ev;
        memset(g.vq.avail, 0, virtq_avail_size(64));
        memset(g.vq.used, 0, virtq_used_size(64));
        vq_set_base(&g.vq, 0);
        vq_disable_notify(&g.vq);
        fake_desc(&g, 0, fake_guest_data_gpa(&g), 64, 0, 0);
        fake_avail(&g, 0);    /* raced in: no kick was sent */
        CHECK(vq_enable_notify(&g.vq), "%s: enable sees the raced buffer",
              ev ? "event idx" : "flags");
        /* Drained properly, the same call says it is safe to sleep and the
         * guest is told to kick for the next buffer. */
        struct vq_elem *e = malloc(sizeof(*e));
        CHECK(vq_pop(&g.vq, &g.mem, e, true, false) == VQ_GOT, "pop");
        free(e);
        CHECK(!vq_enable_notify(&g.vq), "nothing left: may sleep");
        if (ev)
        {
            uint16_t avail_event;
            memcpy(&avail_event, &g.vq.used->ring[64], sizeof(avail_event));
            CHECK(avail_event == 1, "avail_event asks for the next kick");
        }
        else
            CHECK(g.vq.used->flags == 0, "NO_NOTIFY cleared");
    }
    fake_guest_fini(&g);
}

/* Runs one 10 ms epoch of the controller at `rate` frames/s with the given
 * CPU fraction and empty-pass fraction. */
static bool epoch_p(struct adaptive *a, uint64_t *now, uint64_t *cpu, double rate, double busy,
                    double empty, uint64_t budget, uint32_t ring, unsigned passes)
{
    uint64_t dt = ADAPTIVE_EPOCH_NS;
    unsigned frames = (unsigned)(rate * (double)dt / 1e9);
    for (unsigned i = 0; i < passes; i++)
        adaptive_account(a, i < (unsigned)(passes * empty) ? 0 : frames / passes + (i == passes - 1 ? frames % passes : 0));
    *now += dt;
    *cpu += (uint64_t)(busy * (double)dt);
    return adaptive_update(a, *now, *cpu, budget, ring);
}

/* 100 passes per epoch. */
static bool epoch(struct adaptive *a, uint64_t *now, uint64_t *cpu, double rate, double busy,
                  double empty, uint64_t budget, uint32_t ring)
{
    return epoch_p(a, now, cpu, rate, busy, empty, budget, ring, 100);
}

static void test_adaptive(void)
{
    struct adaptive a;
    uint64_t now = 0, cpu = 0, budget = 50 * US;
    adaptive_init(&a, 2 * US, now, cpu);
    CHECK(a.eff == EFF_NOTIFY, "starts in notify");
    CHECK(!adaptive_update(&a, now + ADAPTIVE_EPOCH_NS / 2, cpu, budget, 256) && a.eff == EFF_NOTIFY,
          "no decision before an epoch has passed");
    /* 5 k frames/s: one frame per 200 us, rarer than the 50 us budget. */
    epoch(&a, &now, &cpu, 5000, 0.05, 0, budget, 256);
    CHECK(a.eff == EFF_NOTIFY, "rare frames: notify (%s)", eff_name(a.eff));
    /* 200 k frames/s: 10 per budget: interval at the budget. */
    epoch(&a, &now, &cpu, 200000, 0.3, 0, budget, 256);
    CHECK(a.eff == EFF_INTERVAL && a.interval_ns == budget, "mid load: interval %llu ns",
          (unsigned long long)a.interval_ns);
    /* 4 M frames/s into a 256-entry ring: the period must not let a ring
     * overflow: at most 128 frames per period = 32 us (passes still small). */
    epoch_p(&a, &now, &cpu, 4000000, 0.5, 0, budget, 256, 2000);
    CHECK(a.eff == EFF_INTERVAL && a.interval_ns <= 33 * US && a.interval_ns >= 31 * US,
          "ring cap: interval %llu ns", (unsigned long long)a.interval_ns);
    /* Ticks that find half a ring waiting throttle the guest: kick-driven
     * service instead, and no timer batching at that rate again. */
    epoch(&a, &now, &cpu, 4000000, 0.5, 0, budget, 256);
    CHECK(a.eff == EFF_NOTIFY, "ring pressure: notify (%s)", eff_name(a.eff));
    epoch(&a, &now, &cpu, 3800000, 0.6, 0, budget, 256);
    CHECK(a.eff == EFF_NOTIFY, "same rate, still notify (%s)", eff_name(a.eff));
    {
        /* A second of the same rate later, batching is tried again. */
        struct adaptive p = a;
        uint64_t n3 = now, c3 = cpu;
        int k = 0;
        while (p.eff == EFF_NOTIFY && k < 150) {
            epoch_p(&p, &n3, &c3, 3800000, 0.6, 0, budget, 256, 2000);
            k++;
        }
        CHECK(p.eff == EFF_INTERVAL && k >= 95 && k <= 101,
              "pressure expires after about a second (%d epochs)", k);
    }
    /* Saturated worker: poll. */
    epoch(&a, &now, &cpu, 4000000, 0.95, 0, budget, 256);
    CHECK(a.eff == EFF_POLL, "saturated: poll (%s)", eff_name(a.eff));
    /* In poll the CPU is always 100%; it leaves poll when most polls are empty. */
    epoch(&a, &now, &cpu, 3000000, 1.0, 0.2, budget, 256);
    CHECK(a.eff == EFF_POLL, "busy polls: stay in poll");
    epoch(&a, &now, &cpu, 100000, 1.0, 0.9, budget, 256);   /* still polling: 100% CPU */
    for (int i = 0; i < 3; i++)
        epoch(&a, &now, &cpu, 100000, 0.2, 0.9, budget, 256);
    CHECK(a.eff == EFF_INTERVAL, "mostly empty polls at a clearly lower rate: back to interval "
          "(%s)", eff_name(a.eff));
    /* Hysteresis: 15 k/s is 0.75 per budget: above the way-out threshold
     * (0.5), so batching continues; 5 k/s (0.25) returns to notify. */
    epoch(&a, &now, &cpu, 15000, 0.1, 0.5, budget, 256);
    CHECK(a.eff == EFF_INTERVAL, "hysteresis keeps interval at 0.75 frames per budget");
    /* The smoothed rate falls by half per epoch: a few epochs to notify. */
    int epochs = 0;
    while (a.eff != EFF_NOTIFY && epochs < 12) {
        epoch(&a, &now, &cpu, 5000, 0.1, 0.9, budget, 256);
        epochs++;
    }
    CHECK(a.eff == EFF_NOTIFY && epochs >= 2 && epochs <= 10,
          "low load: back to notify after %d epochs", epochs);
    epoch(&a, &now, &cpu, 15000, 0.1, 0.5, budget, 256);
    CHECK(a.eff == EFF_NOTIFY, "and 0.75 per budget does not leave notify");
    /* Idle: notify, whatever happened before. */
    epoch(&a, &now, &cpu, 4000000, 0.95, 0, budget, 256);
    CHECK(a.eff == EFF_POLL, "saturated again: poll");
    /* Traffic stops: polling ends at the next epoch (every poll is empty),
     * then the rate decays to notify within about 100 ms. */
    epoch(&a, &now, &cpu, 0, 1.0, 1.0, budget, 256);
    CHECK(a.eff == EFF_INTERVAL, "idle polls: leave poll at once (%s)", eff_name(a.eff));
    epochs = 0;
    while (a.eff != EFF_NOTIFY && epochs < 20) {
        epoch(&a, &now, &cpu, 0, 0.0, 1.0, budget, 256);
        epochs++;
    }
    CHECK(a.eff == EFF_NOTIFY && epochs <= 12, "idle: notify after %d more epochs", epochs);
    /* Wake-ups costing 30 us against a 50 us period: interval still costs
     * ~60% of a core, less than polling's 100%. */
    struct adaptive b;
    uint64_t n2 = 0, c2 = 0;
    adaptive_init(&b, 30 * US, n2, c2);
    epoch(&b, &n2, &c2, 200000, 0.3, 0, budget, 256);
    CHECK(b.eff == EFF_INTERVAL, "dear wake-ups, still cheaper than polling: interval (%s)",
          eff_name(b.eff));
    /* If sleeping every period takes most of the core, the measured CPU
     * says so and the next epoch polls. */
    epoch(&b, &n2, &c2, 200000, 0.9, 0, budget, 256);
    CHECK(b.eff == EFF_POLL, "interval costing 90%% of the core: poll (%s)", eff_name(b.eff));
    CHECK(b.decisions >= 1 && a.decisions >= 5, "decisions counted");
}

int main(void)
{
    test_parse();
    test_interval_state_machine();
    test_no_lost_wakeup();
    test_adaptive();
    return check_done("test_policy");
}
