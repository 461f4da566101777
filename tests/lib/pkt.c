/*
 * pkt.c - see pkt.h.
 */
#include "pkt.h"

#include <net/ethernet.h>
#include <string.h>

void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

uint16_t csum(const uint8_t *p, size_t len)
{
    return (uint16_t)~fold(sum16(p, len, 0));
}

uint32_t pseudo(const uint8_t *ip, size_t l4len)
{
    return sum16(ip + 12, 8, 0) + ip[9] + (uint32_t)l4len;
}

bool l4_sums_ok(const uint8_t *ip, size_t len)
{
    size_t tl = get16(ip + 2);
    if (len < 28 || tl > len || tl < 28 || csum(ip, 20) != 0)
        return false;
    return fold(sum16(ip + 20, tl - 20, pseudo(ip, tl - 20))) == 0xffff;
}

void ip_hdr(uint8_t *ip, uint8_t proto, size_t l4len, uint16_t id, const uint8_t src[4],
            const uint8_t dst[4])
{
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + l4len));
    put16(ip + 4, id);
    ip[8] = 64;
    ip[9] = proto;
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    put16(ip + 10, csum(ip, 20));
}

/* The Ethernet header at f: dst, src, type. */
static void eth_hdr(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    put16(f + 12, type);
}

size_t arp_frame(uint8_t *f, uint16_t op, const uint8_t dst[6], const uint8_t sha[6],
                 const uint8_t spa[4], const uint8_t tha[6], const uint8_t tpa[4])
{
    memset(f, 0, 60);
    eth_hdr(f, dst, sha, ETH_P_ARP);
    put16(f + 14, 1);
    put16(f + 16, ETH_P_IP);
    f[18] = 6;
    f[19] = 4;
    put16(f + 20, op);
    memcpy(f + 22, sha, 6);
    memcpy(f + 28, spa, 4);
    if (tha)
        memcpy(f + 32, tha, 6);
    memcpy(f + 38, tpa, 4);
    return 60;
}

size_t icmp_echo(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], const uint8_t sip[4],
                 const uint8_t dip[4], uint16_t seq, size_t payload)
{
    uint8_t *ic = f + 34;
    eth_hdr(f, dst, src, ETH_P_IP);
    ip_hdr(f + 14, 1, 8 + payload, seq, sip, dip);
    memset(ic, 0, 8);
    ic[0] = 8;
    put16(ic + 4, PKT_ECHO_ID);
    put16(ic + 6, seq);
    for (size_t i = 0; i < payload; i++)
        ic[8 + i] = (uint8_t)(seq * 7 + i);
    put16(ic + 2, csum(ic, 8 + payload));
    return 34 + 8 + payload;
}

size_t udp_partial(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], const uint8_t sip[4],
                   const uint8_t dip[4], uint16_t dport, size_t payload, struct virtio_net_hdr *h)
{
    size_t ul = 8 + payload;
    uint8_t *u = f + 34;
    eth_hdr(f, dst, src, ETH_P_IP);
    ip_hdr(f + 14, 17, ul, 1, sip, dip);
    put16(u, 40000);
    put16(u + 2, dport);
    put16(u + 4, (uint16_t)ul);
    for (size_t i = 8; i < ul; i++)
        u[i] = (uint8_t)(i * 3);
    put16(u + 6, fold(pseudo(f + 14, ul)));
    *h = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
                                  .csum_offset = 6 };
    return 34 + ul;
}

size_t tcp_tso(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], const uint8_t sip[4],
               const uint8_t dip[4], uint16_t dport, size_t payload, uint16_t mss,
               struct virtio_net_hdr *h)
{
    size_t tl = 20 + payload;
    uint8_t *t = f + 34;
    eth_hdr(f, dst, src, ETH_P_IP);
    ip_hdr(f + 14, 6, tl, 2, sip, dip);
    memset(t, 0, 20);
    put16(t, 40001);
    put16(t + 2, dport);
    put16(t + 4, 0x1234);
    t[12] = 5 << 4;
    t[13] = 0x18;
    put16(t + 14, 65535);
    for (size_t i = 0; i < payload; i++)
        t[20 + i] = (uint8_t)(i * 5);
    put16(t + 16, fold(pseudo(f + 14, tl)));
    *h = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
                                  .csum_offset = 16, .gso_type = 1 /* TCPV4 */,
                                  .gso_size = mss, .hdr_len = 54 };
    return 34 + tl;
}

bool match_arp_reply(const uint8_t *f, int len, void *want)
{
    struct arp_want *w = want;
    if (len < 42 || get16(f + 12) != ETH_P_ARP || get16(f + 20) != 2 || memcmp(f, w->to, 6) ||
        memcmp(f + 28, w->spa, 4) || memcmp(f + 38, w->tpa, 4))
        return false;
    memcpy(w->sha, f + 22, 6);
    return true;
}

bool match_echo_reply(const uint8_t *f, int len, void *want)
{
    const struct echo_want *w = want;
    const uint8_t *ip = f + 14, *ic = ip + 20;
    if (len != (int)(42 + w->payload) || get16(f + 12) != ETH_P_IP || ip[9] != 1 ||
        memcmp(ip + 12, w->sip, 4) || memcmp(ip + 16, w->dip, 4) || csum(ip, 20) != 0)
        return false;
    if (ic[0] != 0 || get16(ic + 4) != PKT_ECHO_ID || get16(ic + 6) != w->seq ||
        csum(ic, 8 + w->payload) != 0)
        return false;
    for (size_t i = 0; i < w->payload; i++)
        if (ic[8 + i] != (uint8_t)(w->seq * 7 + i))
            return false;
    return true;
}

bool is_l4_to(const uint8_t *f, size_t len, uint8_t proto, const uint8_t sip[4], uint16_t dport)
{
    return len >= 42 && get16(f + 12) == ETH_P_IP && f[23] == proto &&
           (!sip || memcmp(f + 26, sip, 4) == 0) && get16(f + 36) == dport;
}

size_t l4_payload(const uint8_t *f)
{
    size_t l4 = f[23] == 6 ? (size_t)(f[46] >> 4) * 4 : 8;
    return get16(f + 16) - 20 - l4;
}
