/* upmd: umbrella header for the public API. */
#ifndef UPMD_H
#define UPMD_H
#include <upmd/common.h>
#include <upmd/log.h>
#include <upmd/kops.h>
#include <upmd/eal.h>
#include <upmd/memory.h>
#include <upmd/ioas.h>
#include <upmd/iova.h>
#include <upmd/iova_map.h>
#include <upmd/ring.h>
#include <upmd/mempool.h>
#include <upmd/mbuf.h>
#include <upmd/pci.h>
#include <upmd/bus.h>
#include <upmd/model.h>
#include <upmd/ethdev.h>
#include <upmd/vdev.h>
#include <upmd/nvme.h>
#include <upmd/dmadev.h>
#include <upmd/cpu.h>
#endif
