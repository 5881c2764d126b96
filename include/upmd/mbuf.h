/* Packet buffers (mbufs): headroom, segments, reference-counted zero-copy clones, offload metadata, the data's IOVA. */
#ifndef UPMD_MBUF_H
#define UPMD_MBUF_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <upmd/common.h>
#include <upmd/mempool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * An mbuf is a mempool object laid out as
 *
 *   | struct upmd_mbuf (128 bytes) | private area (priv_size) | buffer (buf_len) |
 *                                                            ^ buf_addr, buf_iova
 *
 * and the packet's bytes start at buf_addr + data_off (headroom before,
 * tailroom after). A packet larger than one buffer is a chain of segments
 * linked by next; the first holds pkt_len and nb_segs.
 *
 * A clone shares the data: it is an "indirect" mbuf whose buf_addr points
 * into a "direct" mbuf's buffer, and the direct mbuf's refcnt counts its
 * users (itself and each clone). Freeing drops a reference; the buffer
 * goes back to its pool when the last one goes. Clones are read-only in
 * practice: all of them see the same bytes.
 */
#define UPMD_PKTMBUF_HEADROOM 128
#define UPMD_MBUF_DEFAULT_DATAROOM 2048
#define UPMD_MBUF_DEFAULT_BUF_SIZE (UPMD_MBUF_DEFAULT_DATAROOM + UPMD_PKTMBUF_HEADROOM)

/* ol_flags: what the NIC found (RX) and what it is asked to do (TX). */
#define UPMD_MBUF_F_RX_VLAN (1ULL << 0)		/* vlan_tci is valid */
#define UPMD_MBUF_F_RX_RSS_HASH (1ULL << 1)	/* hash.rss is valid */
#define UPMD_MBUF_F_RX_IP_CKSUM_BAD (1ULL << 4)
#define UPMD_MBUF_F_RX_IP_CKSUM_GOOD (1ULL << 7)
#define UPMD_MBUF_F_RX_L4_CKSUM_BAD (1ULL << 3)
#define UPMD_MBUF_F_RX_L4_CKSUM_GOOD (1ULL << 8)
#define UPMD_MBUF_F_RX_VLAN_STRIPPED (1ULL << 6)	/* the tag was removed into vlan_tci */
#define UPMD_MBUF_F_TX_VLAN (1ULL << 57)	/* insert vlan_tci */
#define UPMD_MBUF_F_TX_IP_CKSUM (1ULL << 54)
#define UPMD_MBUF_F_TX_TCP_CKSUM (1ULL << 52)
#define UPMD_MBUF_F_TX_UDP_CKSUM (3ULL << 52)
#define UPMD_MBUF_F_TX_L4_MASK (3ULL << 52)
#define UPMD_MBUF_F_TX_TCP_SEG (1ULL << 50)
#define UPMD_MBUF_F_TX_IPV4 (1ULL << 55)
#define UPMD_MBUF_F_TX_IPV6 (1ULL << 56)
#define UPMD_MBUF_F_INDIRECT (1ULL << 62)	/* a clone: the buffer is another mbuf's */

/* packet_type */
#define UPMD_PTYPE_L2_ETHER 0x00000001u
#define UPMD_PTYPE_L2_ETHER_VLAN 0x00000006u
#define UPMD_PTYPE_L2_MASK 0x0000000fu
#define UPMD_PTYPE_L3_IPV4 0x00000010u
#define UPMD_PTYPE_L3_IPV6 0x00000040u
#define UPMD_PTYPE_L3_MASK 0x000000f0u
#define UPMD_PTYPE_L4_TCP 0x00000100u
#define UPMD_PTYPE_L4_UDP 0x00000200u
#define UPMD_PTYPE_L4_MASK 0x00000f00u

struct upmd_mbuf {
	/* first cache line: what RX and TX descriptors need */
	void *buf_addr;			/* the buffer */
	uint64_t buf_iova;		/* its IOVA: a descriptor takes buf_iova + data_off */
	uint16_t data_off;		/* where the data starts in the buffer */
	uint16_t refcnt;		/* users of this buffer (direct mbufs) */
	uint16_t nb_segs;		/* segments in the chain (first segment) */
	uint16_t port;			/* input port */
	uint64_t ol_flags;		/* UPMD_MBUF_F_* */
	uint32_t packet_type;		/* UPMD_PTYPE_* */
	uint32_t pkt_len;		/* bytes in the whole chain (first segment) */
	uint16_t data_len;		/* bytes in this segment */
	uint16_t vlan_tci;
	union {
		uint32_t rss;		/* with UPMD_MBUF_F_RX_RSS_HASH */
		uint32_t user;
	} hash;
	uint16_t vlan_tci_outer;
	uint16_t buf_len;		/* bytes in the buffer */
	uint32_t pad0_;
	struct upmd_mempool *pool;	/* where it returns */

	/* second cache line: chaining, TX offload lengths */
	struct upmd_mbuf *next __upmd_cache_aligned;
	union {
		uint64_t tx_offload;
		struct {
			uint64_t l2_len : 7;
			uint64_t l3_len : 9;
			uint64_t l4_len : 8;
			uint64_t tso_segsz : 16;
			uint64_t reserved_ : 24;
		};
	};
	uint16_t priv_size;		/* bytes between the struct and the buffer */
	uint16_t pad1_[3];
	uint64_t udata64;		/* the application's */
	uint64_t reserved2_[4];
};

_Static_assert(sizeof(struct upmd_mbuf) == 2 * UPMD_CACHE_LINE_SIZE, "an mbuf is two cache lines");

/* The pool's private area. */
struct upmd_pktmbuf_pool_private {
	uint16_t data_room_size;
	uint16_t priv_size;
};

/**
 * A pool of @n mbufs with @data_room_size bytes of buffer each (headroom
 * included: UPMD_MBUF_DEFAULT_BUF_SIZE is the usual choice) and @priv_size
 * bytes of application area (a multiple of 8). @return as
 * upmd_mempool_create(), and -EINVAL when data_room_size is below the
 * headroom.
 */
int upmd_pktmbuf_pool_create(const char *name, unsigned n, unsigned cache_size, uint16_t priv_size,
			     uint16_t data_room_size, int socket_id, struct upmd_mempool **out);

/** The pool's buffer size (headroom included). */
static inline uint16_t upmd_pktmbuf_data_room_size(const struct upmd_mempool *mp)
{
	return ((const struct upmd_pktmbuf_pool_private *)mp->priv)->data_room_size;
}

#define upmd_pktmbuf_mtod_offset(m, t, o) ((t)(void *)((char *)(m)->buf_addr + (m)->data_off + (o)))
#define upmd_pktmbuf_mtod(m, t) upmd_pktmbuf_mtod_offset(m, t, 0)

/** The IOVA of the segment's data, for a descriptor. */
static inline uint64_t upmd_pktmbuf_data_iova(const struct upmd_mbuf *m)
{
	return m->buf_iova + m->data_off;
}

/** The IOVA of the segment's buffer start plus headroom (an RX descriptor). */
static inline uint64_t upmd_pktmbuf_data_iova_default(const struct upmd_mbuf *m)
{
	return m->buf_iova + UPMD_PKTMBUF_HEADROOM;
}

static inline uint16_t upmd_pktmbuf_headroom(const struct upmd_mbuf *m)
{
	return m->data_off;
}

static inline uint16_t upmd_pktmbuf_tailroom(const struct upmd_mbuf *m)
{
	return (uint16_t)(m->buf_len - m->data_off - m->data_len);
}

static inline struct upmd_mbuf *upmd_pktmbuf_lastseg(struct upmd_mbuf *m)
{
	while (m->next)
		m = m->next;
	return m;
}

static inline bool upmd_pktmbuf_is_contiguous(const struct upmd_mbuf *m)
{
	return m->nb_segs == 1;
}

/** The direct mbuf that owns an indirect mbuf's buffer. */
static inline struct upmd_mbuf *upmd_mbuf_from_indirect(const struct upmd_mbuf *mi)
{
	return (struct upmd_mbuf *)(uintptr_t)((char *)mi->buf_addr - sizeof(struct upmd_mbuf) - mi->priv_size);
}

static inline uint16_t upmd_mbuf_refcnt_read(const struct upmd_mbuf *m)
{
	return __atomic_load_n(&m->refcnt, __ATOMIC_RELAXED);
}

/** Add @v (may be negative) to the reference count. @return the new count. */
static inline uint16_t upmd_mbuf_refcnt_update(struct upmd_mbuf *m, int16_t v)
{
	/* The sole user needs no atomic: nobody else can see the count. */
	if (upmd_likely(upmd_mbuf_refcnt_read(m) == 1 && v == -1)) {
		__atomic_store_n(&m->refcnt, 0, __ATOMIC_RELAXED);
		return 0;
	}
	/* Acquire-release: a user's last writes to the buffer happen-before
	 * the free by whoever drops the last reference. */
	return __atomic_add_fetch(&m->refcnt, (uint16_t)v, __ATOMIC_ACQ_REL);
}

/** Make a freshly got mbuf an empty one-segment packet. */
static inline void upmd_pktmbuf_reset(struct upmd_mbuf *m)
{
	m->next = NULL;
	m->pkt_len = 0;
	m->tx_offload = 0;
	m->vlan_tci = 0;
	m->vlan_tci_outer = 0;
	m->nb_segs = 1;
	m->port = UINT16_MAX;
	m->ol_flags = 0;
	m->packet_type = 0;
	m->data_off = m->buf_len < UPMD_PKTMBUF_HEADROOM ? m->buf_len : UPMD_PKTMBUF_HEADROOM;
	m->data_len = 0;
}

/** One mbuf, empty, or NULL when the pool is exhausted. */
static inline struct upmd_mbuf *upmd_pktmbuf_alloc(struct upmd_mempool *mp)
{
	void *o;

	if (upmd_unlikely(upmd_mempool_get(mp, &o) < 0))
		return NULL;
	upmd_pktmbuf_reset((struct upmd_mbuf *)o);
	return (struct upmd_mbuf *)o;
}

/** @n mbufs, empty, or none. @return 0 or -ENOENT. */
static inline int upmd_pktmbuf_alloc_bulk(struct upmd_mempool *mp, struct upmd_mbuf **mbufs, unsigned n)
{
	unsigned i;

	if (upmd_unlikely(upmd_mempool_get_bulk(mp, (void **)mbufs, n) < 0))
		return -ENOENT;
	for (i = 0; i < n; i++)
		upmd_pktmbuf_reset(mbufs[i]);
	return 0;
}

/* out of line: detaching a clone */
struct upmd_mbuf *upmd_pktmbuf_prefree_indirect_(struct upmd_mbuf *m);

/*
 * Drop this segment's reference. @return the segment to give back to its
 * pool (reset for its next user), or NULL when others still use it.
 */
static inline struct upmd_mbuf *upmd_pktmbuf_prefree_seg(struct upmd_mbuf *m)
{
	if (upmd_likely(upmd_mbuf_refcnt_read(m) == 1)) {
		if (upmd_unlikely(m->ol_flags & UPMD_MBUF_F_INDIRECT))
			return upmd_pktmbuf_prefree_indirect_(m);
		/* The pool keeps mbufs with refcnt 1, unchained. */
		if (m->next) {
			m->next = NULL;
			m->nb_segs = 1;
		}
		return m;
	}
	if (upmd_mbuf_refcnt_update(m, -1) != 0)
		return NULL;
	if (upmd_unlikely(m->ol_flags & UPMD_MBUF_F_INDIRECT)) {
		m->refcnt = 1;
		return upmd_pktmbuf_prefree_indirect_(m);
	}
	m->refcnt = 1;
	m->next = NULL;
	m->nb_segs = 1;
	return m;
}

/** Free one segment (not the rest of its chain). */
static inline void upmd_pktmbuf_free_seg(struct upmd_mbuf *m)
{
	m = upmd_pktmbuf_prefree_seg(m);
	if (m)
		upmd_mempool_put(m->pool, m);
}

/** Free a packet: every segment. NULL is fine. */
static inline void upmd_pktmbuf_free(struct upmd_mbuf *m)
{
	while (m) {
		struct upmd_mbuf *next = m->next;

		upmd_pktmbuf_free_seg(m);
		m = next;
	}
}

/** Free @n packets (chains too), grouping puts by pool. NULL entries are skipped. */
void upmd_pktmbuf_free_bulk(struct upmd_mbuf **mbufs, unsigned n);

/** Append @len bytes to the packet's last segment. @return where they go, or NULL (no tailroom). */
static inline char *upmd_pktmbuf_append(struct upmd_mbuf *m, uint16_t len)
{
	struct upmd_mbuf *last = upmd_pktmbuf_lastseg(m);
	char *tail;

	if (upmd_unlikely(len > upmd_pktmbuf_tailroom(last)))
		return NULL;
	tail = (char *)last->buf_addr + last->data_off + last->data_len;
	last->data_len = (uint16_t)(last->data_len + len);
	m->pkt_len += len;
	return tail;
}

/** Prepend @len bytes in the first segment's headroom. @return the new start, or NULL. */
static inline char *upmd_pktmbuf_prepend(struct upmd_mbuf *m, uint16_t len)
{
	if (upmd_unlikely(len > upmd_pktmbuf_headroom(m)))
		return NULL;
	m->data_off = (uint16_t)(m->data_off - len);
	m->data_len = (uint16_t)(m->data_len + len);
	m->pkt_len += len;
	return (char *)m->buf_addr + m->data_off;
}

/** Remove @len bytes from the start of the first segment. @return the new start, or NULL. */
static inline char *upmd_pktmbuf_adj(struct upmd_mbuf *m, uint16_t len)
{
	if (upmd_unlikely(len > m->data_len))
		return NULL;
	m->data_off = (uint16_t)(m->data_off + len);
	m->data_len = (uint16_t)(m->data_len - len);
	m->pkt_len -= len;
	return (char *)m->buf_addr + m->data_off;
}

/** Remove @len bytes from the end of the last segment. @return 0 or -EINVAL. */
static inline int upmd_pktmbuf_trim(struct upmd_mbuf *m, uint16_t len)
{
	struct upmd_mbuf *last = upmd_pktmbuf_lastseg(m);

	if (upmd_unlikely(len > last->data_len))
		return -EINVAL;
	last->data_len = (uint16_t)(last->data_len - len);
	m->pkt_len -= len;
	return 0;
}

/**
 * Chain @tail (a packet) after @head's last segment. @return 0, or
 * -EOVERFLOW if the chain would exceed UINT16_MAX segments (nothing done).
 */
int upmd_pktmbuf_chain(struct upmd_mbuf *head, struct upmd_mbuf *tail);

/**
 * A zero-copy clone of packet @md (every segment), its mbufs from @mp.
 * @return the clone, or NULL when @mp is exhausted (nothing changed).
 */
struct upmd_mbuf *upmd_pktmbuf_clone(struct upmd_mbuf *md, struct upmd_mempool *mp);

/**
 * Copy @len bytes from @off of the packet into @buf. @return @buf, or
 * NULL if the packet is shorter than off + len.
 */
void *upmd_pktmbuf_read(const struct upmd_mbuf *m, uint32_t off, uint32_t len, void *buf);

/**
 * Check a packet's consistency (segment count, lengths, refcnt, buffer
 * bounds). @return 0, or -EINVAL with what is wrong in *reason.
 */
int upmd_pktmbuf_check(const struct upmd_mbuf *m, const char **reason);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_MBUF_H */
