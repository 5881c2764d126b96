/* Packet buffers: the pool, bulk free grouped by pool, chains, zero-copy clones, reads across segments, consistency checks. */
#include <errno.h>
#include <string.h>

#include <upmd/log.h>
#include <upmd/mbuf.h>

#define MBUF_LOG "mbuf"

struct pool_args {
	uint16_t priv_size;
	uint16_t data_room;
};

/* The mbuf's own buffer: right after the struct and the private area. */
static void own_buffer(struct upmd_mbuf *m, const struct upmd_mempool *mp, uint16_t priv_size,
		       uint16_t data_room)
{
	uint64_t hdr_iova = upmd_mempool_virt2iova(m);
	uint32_t off = (uint32_t)sizeof(*m) + priv_size;

	m->buf_addr = (char *)m + off;
	m->buf_iova = hdr_iova == UPMD_BAD_IOVA ? UPMD_BAD_IOVA : hdr_iova + off;
	m->buf_len = data_room;
	m->priv_size = priv_size;
	m->pool = (struct upmd_mempool *)(uintptr_t)mp;
}

static void mbuf_init(struct upmd_mempool *mp, void *arg, void *obj, unsigned idx)
{
	const struct pool_args *a = arg;
	struct upmd_mbuf *m = obj;

	(void)idx;
	memset(m, 0, sizeof(*m) + a->priv_size);
	own_buffer(m, mp, a->priv_size, a->data_room);
	m->refcnt = 1;
	m->nb_segs = 1;
	m->port = UINT16_MAX;
	m->data_off = UPMD_PKTMBUF_HEADROOM;
}

int upmd_pktmbuf_pool_create(const char *name, unsigned n, unsigned cache_size, uint16_t priv_size,
			     uint16_t data_room_size, int socket_id, struct upmd_mempool **out)
{
	struct pool_args a = { priv_size, data_room_size };
	struct upmd_pktmbuf_pool_private *pp;
	struct upmd_mempool *mp;
	int rc;

	if (data_room_size < UPMD_PKTMBUF_HEADROOM || priv_size % 8) {
		UPMD_ERR(MBUF_LOG, "mbuf pool \"%s\": data room %u must hold the %d-byte headroom, private size %u must be a multiple of 8",
			 name ? name : "(null)", data_room_size, UPMD_PKTMBUF_HEADROOM, priv_size);
		return -EINVAL;
	}
	rc = upmd_mempool_create(name, n, (unsigned)sizeof(struct upmd_mbuf) + priv_size + data_room_size,
				 cache_size, sizeof(*pp), socket_id, 0, mbuf_init, &a, &mp);
	if (rc < 0)
		return rc;
	pp = mp->priv;
	pp->data_room_size = data_room_size;
	pp->priv_size = priv_size;
	*out = mp;
	return 0;
}

struct upmd_mbuf *upmd_pktmbuf_prefree_indirect_(struct upmd_mbuf *m)
{
	const struct upmd_pktmbuf_pool_private *pp = m->pool->priv;
	struct upmd_mbuf *md = upmd_mbuf_from_indirect(m);
	struct upmd_mempool *dpool = md->pool;

	/* Give the clone its own buffer back, then drop its reference on
	 * the direct mbuf's. */
	own_buffer(m, m->pool, pp->priv_size, pp->data_room_size);
	m->ol_flags = 0;
	m->next = NULL;
	m->nb_segs = 1;
	if (upmd_mbuf_refcnt_update(md, -1) == 0) {
		md->refcnt = 1;
		md->next = NULL;
		md->nb_segs = 1;
		upmd_mempool_put(dpool, md);
	}
	return m;
}

void upmd_pktmbuf_free_bulk(struct upmd_mbuf **mbufs, unsigned n)
{
	void *pend[64];
	struct upmd_mempool *pool = NULL;
	unsigned i, k = 0;

	for (i = 0; i < n; i++) {
		struct upmd_mbuf *m = mbufs[i];

		while (m) {
			struct upmd_mbuf *next = m->next, *f = upmd_pktmbuf_prefree_seg(m);

			if (f) {
				/* One put per run of the same pool. */
				if (f->pool != pool || k == UPMD_DIM(pend)) {
					if (k)
						upmd_mempool_put_bulk(pool, pend, k);
					pool = f->pool;
					k = 0;
				}
				pend[k++] = f;
			}
			m = next;
		}
	}
	if (k)
		upmd_mempool_put_bulk(pool, pend, k);
}

int upmd_pktmbuf_chain(struct upmd_mbuf *head, struct upmd_mbuf *tail)
{
	if (head->nb_segs + tail->nb_segs > UINT16_MAX)
		return -EOVERFLOW;
	upmd_pktmbuf_lastseg(head)->next = tail;
	head->nb_segs = (uint16_t)(head->nb_segs + tail->nb_segs);
	head->pkt_len += tail->pkt_len;
	/* The tail is no longer a packet of its own. */
	tail->pkt_len = tail->data_len;
	tail->nb_segs = 1;
	return 0;
}

struct upmd_mbuf *upmd_pktmbuf_clone(struct upmd_mbuf *md, struct upmd_mempool *mp)
{
	struct upmd_mbuf *head = NULL, **link = &head, *seg;

	for (seg = md; seg; seg = seg->next) {
		struct upmd_mbuf *mi = upmd_pktmbuf_alloc(mp), *owner;

		if (!mi) {
			upmd_pktmbuf_free(head);	/* drops the references taken so far */
			return NULL;
		}
		/* A clone of a clone shares the original owner's buffer. */
		owner = (seg->ol_flags & UPMD_MBUF_F_INDIRECT) ? upmd_mbuf_from_indirect(seg) : seg;
		upmd_mbuf_refcnt_update(owner, 1);
		mi->buf_addr = seg->buf_addr;
		mi->buf_iova = seg->buf_iova;
		mi->buf_len = seg->buf_len;
		mi->data_off = seg->data_off;
		mi->data_len = seg->data_len;
		/* upmd_mbuf_from_indirect() finds the owner from buf_addr and
		 * the owner's private size. */
		mi->priv_size = owner->priv_size;
		mi->ol_flags = seg->ol_flags | UPMD_MBUF_F_INDIRECT;
		*link = mi;
		link = &mi->next;
	}
	head->pkt_len = md->pkt_len;
	head->nb_segs = md->nb_segs;
	head->port = md->port;
	head->vlan_tci = md->vlan_tci;
	head->vlan_tci_outer = md->vlan_tci_outer;
	head->tx_offload = md->tx_offload;
	head->hash = md->hash;
	head->packet_type = md->packet_type;
	return head;
}

void *upmd_pktmbuf_read(const struct upmd_mbuf *m, uint32_t off, uint32_t len, void *buf)
{
	char *out = buf;

	if ((uint64_t)off + len > m->pkt_len)
		return NULL;
	while (m && off >= m->data_len) {
		off -= m->data_len;
		m = m->next;
	}
	while (len && m) {
		uint32_t n = UPMD_MIN(len, (uint32_t)m->data_len - off);

		memcpy(out, upmd_pktmbuf_mtod_offset(m, const char *, off), n);
		out += n;
		len -= n;
		off = 0;
		m = m->next;
	}
	return len ? NULL : buf;
}

int upmd_pktmbuf_check(const struct upmd_mbuf *m, const char **reason)
{
	const struct upmd_mbuf *seg;
	unsigned nb = 0;
	uint64_t len = 0;
	const char *why = NULL;

	if (!m) {
		why = "NULL mbuf";
		goto bad;
	}
	for (seg = m; seg; seg = seg->next) {
		const struct upmd_mbuf *owner = (seg->ol_flags & UPMD_MBUF_F_INDIRECT) ? upmd_mbuf_from_indirect(seg) : seg;

		if (!seg->pool) {
			why = "a segment has no pool";
			goto bad;
		}
		if (upmd_mbuf_refcnt_read(owner) == 0) {
			why = "a segment's buffer has refcnt 0 (used after free)";
			goto bad;
		}
		if ((uint32_t)seg->data_off + seg->data_len > seg->buf_len) {
			why = "data_off + data_len runs past the buffer";
			goto bad;
		}
		len += seg->data_len;
		if (++nb > UINT16_MAX) {
			why = "the chain is longer than 65535 segments (a loop?)";
			goto bad;
		}
	}
	if (nb != m->nb_segs) {
		why = "nb_segs does not match the chain";
		goto bad;
	}
	if (len != m->pkt_len) {
		why = "pkt_len is not the sum of the segments' data_len";
		goto bad;
	}
	return 0;
bad:
	if (reason)
		*reason = why;
	return -EINVAL;
}
