/* An out-of-tree application: built with `cc app.c $(pkg-config --cflags --libs upmd)`. */
#include <stdio.h>

#include <upmd/upmd.h>

int main(int argc, char **argv)
{
	char *args[] = { argc > 0 ? argv[0] : "app", "-l", "0", "--no-huge", "-m", "8",
			 "--log-level", "warning", "--model", "", NULL };
	int rc;

	/* The model with no devices: EAL, memory and the IOAS, no hardware. */
	rc = upmd_eal_init((int)(sizeof(args) / sizeof(args[0])) - 1, args);
	if (rc < 0) {
		fprintf(stderr, "upmd_eal_init failed: %d\n", rc);
		return upmd_eal_exit_code(rc);
	}
	printf("pkg-config example: EAL up, %u lcore(s), %u memory segment(s), IOVA mode %s\n",
	       upmd_lcore_count(), upmd_memseg_count(), upmd_iova_mode_name(upmd_eal_iova_mode()));
	upmd_eal_cleanup();
	return 0;
}
