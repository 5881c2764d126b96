/* virtio-net data path: RX from used entries with merged buffers chained into packets and slots refilled, TX chains with the header pushed into the headroom when it can be. */
#include <string.h>

#include <upmd/log.h>

#include "virtio_net.h"

/* The most buffers one merged frame may take: 64 of 2 KiB hold a 64 KiB
 * frame, the largest a virtio-net header can describe. More is a device
 * error. */
#define VIRTIO_RX_MAX_BUFS 64

/* A used entry the device should never have written: its buffer back on
 * the ring unchanged, the frame lost and counted. */
static inline bool bad_elem(const struct virtqueue *vq, uint32_t id, uint32_t len)
{
	return id >= vq->size || !vq->cookie[id] || len > vq->desc[id].len;
}

uint16_t virtio_recv_pkts(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct virtqueue *vq = queue;
	/* Acquire: the used entries and the frames' bytes were written
	 * before the device published this index. */
	uint16_t used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	uint16_t ready = (uint16_t)(used - vq->used_last), nb = 0, posted = 0;
	uint64_t bytes = 0;

	while (nb < n && ready) {
		const struct vring_used_elem *e = &vq->used->ring[vq->used_last & vq->mask];
		struct upmd_mbuf *repl[VIRTIO_RX_MAX_BUFS], *head, *prev = NULL;
		const struct virtio_net_hdr *h;
		uint16_t nbuf = 1, k;

		if (upmd_unlikely(bad_elem(vq, e->id, e->len) || e->len < VIRTIO_NET_HDR_SIZE)) {
			/* Re-post whatever buffer the slot names, if any. */
			vq->st.errors++;
			vq->used_last++;
			ready--;
			if (e->id < vq->size && vq->cookie[e->id]) {
				vq->avail->ring[vq->avail_idx & vq->mask] = (uint16_t)e->id;
				vq->avail_idx++;
				posted++;
			}
			continue;
		}
		head = vq->cookie[e->id];
		h = (const struct virtio_net_hdr *)((const char *)head->buf_addr + head->data_off -
						    VIRTIO_NET_HDR_SIZE);
		if (vq->mrg)
			nbuf = h->num_buffers;
		if (upmd_unlikely(nbuf == 0 || nbuf > UPMD_DIM(repl))) {
			/* A header the device should not have written: drop
			 * this buffer (back on the ring as it is) and go on. */
			vq->st.errors++;
			vq->used_last++;
			ready--;
			vq->avail->ring[vq->avail_idx & vq->mask] = (uint16_t)e->id;
			vq->avail_idx++;
			posted++;
			continue;
		}
		if (upmd_unlikely(nbuf > ready))
			break;		/* the rest of this frame is not published yet */
		/* Buffers to put back before taking these: none, no frame. */
		if (upmd_unlikely(upmd_pktmbuf_alloc_bulk(vq->mp, repl, nbuf) < 0)) {
			vq->st.nombuf++;
			break;
		}
		for (k = 0; k < nbuf; k++) {
			const struct vring_used_elem *ek = &vq->used->ring[(uint16_t)(vq->used_last + k) & vq->mask];
			uint16_t id = (uint16_t)ek->id;
			struct upmd_mbuf *m;

			if (upmd_unlikely(bad_elem(vq, ek->id, ek->len))) {
				vq->st.errors++;
				upmd_pktmbuf_free(repl[k]);
				continue;
			}
			m = vq->cookie[id];
			if (k == 0) {
				m->data_len = (uint16_t)(ek->len - VIRTIO_NET_HDR_SIZE);
				m->pkt_len = m->data_len;
				m->nb_segs = 1;
				m->port = vq->port;
				m->next = NULL;
			} else {
				/* A continuation buffer holds data from where its header would be. */
				m->data_off = (uint16_t)(m->data_off - VIRTIO_NET_HDR_SIZE);
				m->data_len = (uint16_t)ek->len;
				m->next = NULL;
				head->pkt_len += ek->len;
				head->nb_segs++;
				prev->next = m;
			}
			prev = m;
			rx_post(vq, id, repl[k]);
			posted++;
		}
		vq->used_last = (uint16_t)(vq->used_last + nbuf);
		ready = (uint16_t)(ready - nbuf);
		if (upmd_unlikely(head->pkt_len == 0)) {
			vq->st.errors++;	/* a frame of no bytes */
			upmd_pktmbuf_free(head);
			continue;
		}
		bytes += head->pkt_len;
		pkts[nb++] = head;
	}
	if (posted)
		vq_kick(vq);	/* one doorbell for every refilled slot */
	vq->st.packets += nb;
	vq->st.bytes += bytes;
	return nb;
}

/* Take back what the device has sent: free the packets, return the chains. */
static inline void tx_reclaim(struct virtqueue *vq)
{
	uint16_t used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);

	while (vq->used_last != used) {
		uint32_t head = vq->used->ring[vq->used_last & vq->mask].id;
		uint16_t last, k;

		vq->used_last++;
		if (upmd_unlikely(head >= vq->size || !vq->cookie[head])) {
			vq->st.errors++;
			continue;
		}
		for (last = (uint16_t)head, k = 1; k < vq->ndesc[head]; k++)
			last = vq->desc[last].next;
		vq->desc[last].next = vq->free_head;
		vq->free_head = (uint16_t)head;
		vq->num_free = (uint16_t)(vq->num_free + vq->ndesc[head]);
		upmd_pktmbuf_free(vq->cookie[head]);
		vq->cookie[head] = NULL;
	}
}

uint16_t virtio_xmit_pkts(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct virtqueue *vq = queue;
	uint64_t bytes = 0;
	uint16_t i;

	tx_reclaim(vq);
	for (i = 0; i < n; i++) {
		struct upmd_mbuf *m = pkts[i], *seg;
		/* VERSION_1 lets the header share the first buffer: into the
		 * headroom when the buffer is this packet's alone. */
		bool push = m->nb_segs == 1 && !(m->ol_flags & UPMD_MBUF_F_INDIRECT) &&
			    upmd_mbuf_refcnt_read(m) == 1 && m->data_off >= VIRTIO_NET_HDR_SIZE;
		uint16_t need = push ? 1 : (uint16_t)(1 + m->nb_segs), head, idx;

		if (upmd_unlikely(need > vq->num_free)) {
			tx_reclaim(vq);
			if (need > vq->num_free)
				break;
		}
		head = idx = vq->free_head;
		if (push) {
			char *hdr = (char *)m->buf_addr + m->data_off - VIRTIO_NET_HDR_SIZE;

			memset(hdr, 0, VIRTIO_NET_HDR_SIZE);
			idx = vq->desc[head].next;
			vq->desc[head].addr = m->buf_iova + m->data_off - VIRTIO_NET_HDR_SIZE;
			vq->desc[head].len = (uint32_t)m->data_len + VIRTIO_NET_HDR_SIZE;
			vq->desc[head].flags = 0;
		} else {
			uint64_t hiova = vq->mz->iova + vq->hdr_off + (uint64_t)head * VIRTIO_NET_HDR_SIZE;
			uint16_t left = m->nb_segs;

			memset((char *)vq->mz->addr + vq->hdr_off + (size_t)head * VIRTIO_NET_HDR_SIZE, 0,
			       VIRTIO_NET_HDR_SIZE);
			vq->desc[head].addr = hiova;
			vq->desc[head].len = VIRTIO_NET_HDR_SIZE;
			vq->desc[head].flags = VRING_DESC_F_NEXT;
			/* The chain follows the free list's own links. */
			idx = vq->desc[head].next;
			for (seg = m; seg; seg = seg->next, left--) {
				uint16_t cur = idx;

				idx = vq->desc[cur].next;
				vq->desc[cur].addr = seg->buf_iova + seg->data_off;
				vq->desc[cur].len = seg->data_len;
				vq->desc[cur].flags = left > 1 ? VRING_DESC_F_NEXT : 0;
			}
		}
		vq->free_head = idx;
		vq->num_free = (uint16_t)(vq->num_free - need);
		vq->cookie[head] = m;
		vq->ndesc[head] = need;
		vq->avail->ring[vq->avail_idx & vq->mask] = head;
		vq->avail_idx++;
		bytes += m->pkt_len;
	}
	if (i)
		vq_kick(vq);	/* one doorbell for the burst */
	vq->st.packets += i;
	vq->st.bytes += bytes;
	return i;
}
