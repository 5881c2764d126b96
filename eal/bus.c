/* Bus registry: buses add themselves at load time; the EAL walks them in registration order. */
#include <stddef.h>

#include <upmd/bus.h>

static struct upmd_bus *bus_head;

void upmd_bus_register(struct upmd_bus *bus)
{
	struct upmd_bus **p = &bus_head;

	while (*p)
		p = &(*p)->next;
	bus->next = NULL;
	*p = bus;
}

struct upmd_bus *upmd_bus_first(void)
{
	return bus_head;
}
