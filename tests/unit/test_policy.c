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

/* A simulated worker: what its wake-ups and frames cost, in ns of CPU.
 * Kicks batch a little worse than the controller's model assumes, so
 * kick_share has something to learn. */
struct machine {
    double kick_ns, timer_ns, frame_ns;
    uint64_t late_ns;       /* every tick this late */
};

static double sim_kicks_per_frame(const struct machine *m, double rate)
{
    double k = 1.0 / (1.0 + 0.7 * rate * m->kick_ns / 1e9);
    return k > 1.0 ? 1.0 : k;
}

/* One 10 ms epoch at `rate` frames/s under whatever the controller chose,
 * costed by the machine: wake-ups and passes as the worker would make
 * them (ticks that find more than `ring` frames leave the rest for the
 * next tick, as a full ring would). */
static bool sim_epoch(struct adaptive *a, const struct machine *m, uint64_t *now, uint64_t *cpu,
                      double rate, uint64_t budget, uint32_t ring)
{
    uint64_t dt = ADAPTIVE_EPOCH_NS;
    double frames = rate * (double)dt / 1e9, used = 0;
    if (a->eff == EFF_NOTIFY) {
        /* A worker near saturation rarely sleeps: its wake-ups can take
         * at most half the time the frames leave. */
        double kmax = ((double)dt - frames * m->frame_ns) / 2 / m->kick_ns;
        double kf = frames * sim_kicks_per_frame(m, rate);
        unsigned kicks = (unsigned)((kf < kmax ? kf : kmax > 0 ? kmax : 0) + 0.5);
        if (!kicks && frames >= 1)
            kicks = 1;
        for (unsigned i = 0; i < kicks; i++) {
            adaptive_wake(a, false, 0);
            adaptive_account(a, (unsigned)(frames / kicks) + (i < (unsigned)frames % kicks));
        }
        used = kicks * m->kick_ns + frames * m->frame_ns;
    } else if (a->eff == EFF_INTERVAL) {
        unsigned ticks = (unsigned)(dt / (a->interval_ns + m->late_ns));
        double per = frames / ticks;
        for (unsigned i = 0; i < ticks; i++) {
            adaptive_wake(a, true, m->late_ns);
            unsigned f = (unsigned)(per * (i + 1)) - (unsigned)(per * i);
            adaptive_account(a, f > ring ? ring : f);
        }
        used = ticks * m->timer_ns + frames * m->frame_ns;
    } else {
        /* Polling: the core is spent; passes every frame_ns at most. */
        unsigned passes = (unsigned)((double)dt / (m->frame_ns * 4));
        unsigned busy = (unsigned)frames < passes ? (unsigned)frames : passes;
        for (unsigned i = 0; i < passes; i++)
            adaptive_account(a, i < busy ? (unsigned)(frames / busy) : 0);
        used = (double)dt;
    }
    if (used > (double)dt)
        used = (double)dt;
    *now += dt;
    *cpu += (uint64_t)used;
    return adaptive_update(a, *now, *cpu, budget, ring);
}

/* Runs up to `max` epochs at one rate; returns how many it took the
 * controller to settle on `want` (max + 1 if it never did). */
static int settle(struct adaptive *a, const struct machine *m, uint64_t *now, uint64_t *cpu,
                  double rate, uint64_t budget, uint32_t ring, enum eff_mode want, int max)
{
    for (int i = 1; i <= max; i++) {
        sim_epoch(a, m, now, cpu, rate, budget, ring);
        if (a->eff == want)
            return i;
    }
    return max + 1;
}

/* Stays in its mode for n epochs? */
static bool stays(struct adaptive *a, const struct machine *m, uint64_t *now, uint64_t *cpu,
                  double rate, uint64_t budget, uint32_t ring, int n)
{
    enum eff_mode e = a->eff;
    for (int i = 0; i < n; i++) {
        sim_epoch(a, m, now, cpu, rate, budget, ring);
        if (a->eff != e)
            return false;
    }
    return true;
}

static void test_adaptive(void)
{
    struct adaptive a;
    const struct machine even = { 5000, 5000, 100, 0 };
    uint64_t now = 0, cpu = 0, budget = 50 * US;
    adaptive_init(&a, 5 * US, 0, now, cpu);
    CHECK(a.eff == EFF_NOTIFY, "starts in notify");
    CHECK(!adaptive_update(&a, now + ADAPTIVE_EPOCH_NS / 2, cpu, budget, 256) && a.eff == EFF_NOTIFY,
          "no decision before an epoch has passed");
    /* 5 k frames/s: a kick per frame costs 25 ms/s, a 50 us tick 100 ms/s. */
    CHECK(stays(&a, &even, &now, &cpu, 5000, budget, 256, 20), "rare frames: notify (%s)",
          eff_name(a.eff));
    /* 200 k frames/s: kicks ride along half the time (~0.5 s/s of wake-ups)
     * against 0.1 s/s of ticks: interval at the budget. */
    sim_epoch(&a, &even, &now, &cpu, 200000, budget, 256);
    CHECK(a.eff == EFF_INTERVAL && a.interval_ns == budget, "mid load: interval %llu ns (%s)",
          (unsigned long long)a.interval_ns, eff_name(a.eff));
    CHECK(stays(&a, &even, &now, &cpu, 200000, budget, 256, 30), "and stays there");
    CHECK(a.frame_cost > 75 && a.frame_cost < 125, "frame cost learnt: %.0f ns (100)",
          a.frame_cost);
    /* Rare frames: the smoothed rate halves per epoch, then notify. */
    int k = settle(&a, &even, &now, &cpu, 5000, budget, 256, EFF_NOTIFY, 20);
    CHECK(k <= 12, "low load: back to notify after %d epochs", k);
    /* 1.5 M frames/s into a 128-entry ring, from notify: the period must
     * not let a ring overflow: at most 3/8 of it, 48 frames = 32 us. */
    sim_epoch(&a, &even, &now, &cpu, 1500000, budget, 128);
    CHECK(a.eff == EFF_INTERVAL && a.interval_ns <= 33 * US && a.interval_ns >= 31 * US,
          "ring cap: interval %llu ns (%s)", (unsigned long long)a.interval_ns, eff_name(a.eff));
    CHECK(stays(&a, &even, &now, &cpu, 1500000, budget, 128, 20) && a.pressure_rate == 0,
          "3/8 of a ring per tick is no pressure");
    /* Ticks that find 3/4 of a ring waiting throttle the guest: kick-driven
     * service instead, and no timer batching at that rate again. */
    sim_epoch(&a, &even, &now, &cpu, 3500000, budget, 128);
    CHECK(a.eff == EFF_NOTIFY, "ring pressure: notify (%s)", eff_name(a.eff));
    sim_epoch(&a, &even, &now, &cpu, 3300000, budget, 128);
    CHECK(a.eff == EFF_NOTIFY, "same rate, still notify (%s)", eff_name(a.eff));
    {
        /* A second of the same rate later, batching is tried again. */
        struct adaptive p = a;
        uint64_t n3 = now, c3 = cpu;
        for (k = 1; k <= 150 && p.pressure_rate > 0; k++)
            sim_epoch(&p, &even, &n3, &c3, 3300000, budget, 128);
        CHECK(k >= 95 && k <= 102, "pressure expires after about a second (%d epochs)", k);
    }
    /* Rare frames again: notify. */
    k = settle(&a, &even, &now, &cpu, 5000, budget, 256, EFF_NOTIFY, 20);
    CHECK(k <= 12, "low load again: notify after %d epochs", k);
    /* Idle: notify stays, and nothing is learnt from nothing. */
    double kc = a.kick_cost;
    CHECK(stays(&a, &even, &now, &cpu, 0, budget, 256, 20) && a.kick_cost == kc,
          "idle: notify, model unchanged");

    /* The model is measured, not assumed.  Timer wake-ups three times
     * dearer than the calibration said (15 us, kicks 5 us): at 40 k
     * frames/s the seed says interval (0.10 s/s against 0.17), the
     * measurement says notify (0.30 against 0.17). */
    struct adaptive b;
    const struct machine dear_timer = { 5000, 15000, 200, 0 };
    now = cpu = 0;
    adaptive_init(&b, 5 * US, 0, now, cpu);
    sim_epoch(&b, &dear_timer, &now, &cpu, 40000, budget, 256);
    CHECK(b.eff == EFF_INTERVAL, "seeded model: interval at 40 k/s (%s)", eff_name(b.eff));
    k = settle(&b, &dear_timer, &now, &cpu, 40000, budget, 256, EFF_NOTIFY, 30);
    CHECK(k <= 30, "measured: timers dear, notify after %d epochs", k);
    CHECK(b.timer_cost > 9000 && b.timer_cost < 18000,
          "timer cost learnt: %.0f ns (15000; from a 5000 seed)", b.timer_cost);
    CHECK(stays(&b, &dear_timer, &now, &cpu, 40000, budget, 256, 50), "and no flapping");
    /* The host changes (timer wake-ups now as cheap as kicks): kept out of
     * ticks by a stale estimate, the controller would never know; every
     * 2 s it tries the other schedule when the model puts it within 1.5x. */
    k = settle(&b, &even, &now, &cpu, 40000, budget, 256, EFF_INTERVAL, 450);
    CHECK(k <= 450 && b.explorations >= 1, "exploration finds cheap ticks after %d epochs", k);
    CHECK(stays(&b, &even, &now, &cpu, 40000, budget, 256, 150), "and keeps them");
    /* Kicks dear instead (20 us, timers 5 us), seed 10 us: at 10 k/s the
     * seed says notify (0.09 s/s against 0.10), the measurement interval. */
    struct adaptive c;
    const struct machine dear_kick = { 20000, 5000, 200, 0 };
    now = cpu = 0;
    adaptive_init(&c, 10 * US, 0, now, cpu);
    uint64_t b100 = 100 * US;
    sim_epoch(&c, &dear_kick, &now, &cpu, 10000, b100, 256);
    CHECK(c.eff == EFF_NOTIFY, "seeded model: notify at 10 k/s (%s)", eff_name(c.eff));
    k = settle(&c, &dear_kick, &now, &cpu, 10000, b100, 256, EFF_INTERVAL, 30);
    CHECK(k <= 30 && c.interval_ns == b100, "measured: kicks dear, interval after %d epochs", k);
    CHECK(stays(&c, &dear_kick, &now, &cpu, 10000, b100, 256, 50), "and no flapping");
    CHECK(c.timer_cost < 7000, "timer cost learnt: %.0f ns (5000)", c.timer_cost);

    /* Saturation.  Wake-ups of 30 us: at 200 k/s a 50 us tick (60% of
     * the core) beats kick-driven service and polling; a load that fills
     * the core even so polls. */
    struct adaptive d;
    const struct machine dear = { 30000, 30000, 400, 0 };
    now = cpu = 0;
    adaptive_init(&d, 30 * US, 0, now, cpu);
    sim_epoch(&d, &dear, &now, &cpu, 200000, budget, 256);
    CHECK(d.eff == EFF_INTERVAL, "dear wake-ups: interval (%s)", eff_name(d.eff));
    CHECK(stays(&d, &dear, &now, &cpu, 200000, budget, 256, 20),
          "dear wake-ups, still cheaper than polling: interval (%s)", eff_name(d.eff));
    sim_epoch(&d, &dear, &now, &cpu, 800000, budget, 256);
    CHECK(d.eff == EFF_POLL, "interval costing 92%% of the core: poll (%s)", eff_name(d.eff));
    CHECK(stays(&d, &dear, &now, &cpu, 800000, budget, 256, 20), "busy polls: stay in poll");
    sim_epoch(&d, &dear, &now, &cpu, 0, budget, 256);
    CHECK(d.eff != EFF_POLL, "idle polls: leave poll at once (%s)", eff_name(d.eff));
    k = settle(&d, &dear, &now, &cpu, 0, budget, 256, EFF_NOTIFY, 20);
    CHECK(k <= 12, "idle: notify after %d more epochs", k);
    CHECK(d.decisions >= 3 && a.decisions >= 5, "decisions counted");

    /* A moment of saturation (another guest's burst on the same worker)
     * makes it poll; at 2 M frames/s most polls find a frame, but the
     * model says ticks would take a third of the core: it leaves poll. */
    struct adaptive q;
    now = cpu = 0;
    adaptive_init(&q, 5 * US, 0, now, cpu);
    for (int i = 0; i < 10; i++)
        sim_epoch(&q, &even, &now, &cpu, 200000, budget, 256);
    for (int i = 0; i < 100; i++)
        adaptive_account(&q, 20);
    now += ADAPTIVE_EPOCH_NS;
    cpu += ADAPTIVE_EPOCH_NS * 95 / 100;
    adaptive_update(&q, now, cpu, budget, 256);
    CHECK(q.eff == EFF_POLL, "a saturated epoch: poll (%s)", eff_name(q.eff));
    k = settle(&q, &even, &now, &cpu, 2000000, budget, 256, EFF_INTERVAL, 3);
    CHECK(k <= 3, "busy polls the model says ticks can carry: interval after %d epochs", k);

    /* Ticks that come 20 us late: the period leaves room for it (50 us
     * budget: 30 us periods), and where 3/8 of a ring arrives in less
     * than twice the lateness, no period works: kicks. */
    struct adaptive l;
    const struct machine late = { 5000, 5000, 100, 20000 };
    now = cpu = 0;
    adaptive_init(&l, 5 * US, 0, now, cpu);
    k = settle(&l, &late, &now, &cpu, 200000, budget, 256, EFF_INTERVAL, 5);
    for (int i = 0; i < 40; i++)
        sim_epoch(&l, &late, &now, &cpu, 200000, budget, 256);
    CHECK(l.eff == EFF_INTERVAL && l.interval_ns >= 29 * US && l.interval_ns <= 33 * US &&
          l.late > 18000, "late ticks: interval %llu ns, lateness learnt %.0f ns",
          (unsigned long long)l.interval_ns, l.late);
    k = settle(&l, &late, &now, &cpu, 1500000, budget, 128, EFF_NOTIFY, 5);
    CHECK(k <= 5 && stays(&l, &late, &now, &cpu, 1500000, budget, 128, 20),
          "late ticks, 3/8 of a ring per 32 us: notify (%s)", eff_name(l.eff));

    /* A worker that had no adaptive queue for a while starts its first
     * adaptive epoch afresh: no CPU from before counted as this epoch's. */
    struct adaptive e;
    now = cpu = 0;
    adaptive_init(&e, 5 * US, 0, now, cpu);
    now += 5000 * MS;
    cpu += 4000 * MS;           /* the worker was busy with notify queues */
    adaptive_restart(&e, now);
    CHECK(!adaptive_update(&e, now + ADAPTIVE_EPOCH_NS, cpu, budget, 256) && e.eff == EFF_NOTIFY,
          "restart: the first update only starts the epoch");
    now += ADAPTIVE_EPOCH_NS;
    sim_epoch(&e, &even, &now, &cpu, 5000, budget, 256);
    CHECK(e.eff == EFF_NOTIFY && e.busy < 0.2, "restart: not mistaken for saturation (%.2f)",
          e.busy);
}

int main(void)
{
    test_parse();
    test_interval_state_machine();
    test_no_lost_wakeup();
    test_adaptive();
    return check_done("test_policy");
}
