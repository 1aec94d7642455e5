/* Unit tests: job.c state machine and backoff; stage.c table. */
#include "daemon.h"
#include "provider.h"
#include "tap.h"
#include <string.h>

int main(void)
{
	ok(!strcmp(job_transition("queued", JOB_EV_START), "running"), "queued -start-> running");
	ok(!strcmp(job_transition("running", JOB_EV_RETRY), "queued"), "running -retry-> queued");
	ok(!strcmp(job_transition("running", JOB_EV_SUCCEED), "completed"), "running -succeed-> completed");
	ok(job_transition("completed", JOB_EV_START) == NULL, "completed jobs never restart");
	ok(job_transition("queued", JOB_EV_SUCCEED) == NULL, "a queued job cannot complete");
	ok(job_transition("cancelled", JOB_EV_RETRY) == NULL, "cancelled is final");
	for (int n = 0; n < 6; n++) {
		double d = job_backoff(n, 2, 60), full = 2.0 * (1 << n) > 60 ? 60 : 2.0 * (1 << n);
		ok(d >= full / 2 && d <= full, "backoff %d = %.2f within [%.1f, %.1f]", n, d, full / 2, full);
	}
	ok(!strcmp(stage_next(stage_find("assembly"))->name, "review"), "assembly then review");
	ok(stage_find("review")->kind == STAGE_GATE, "review is a gate");
	ok(stage_next(stage_find("upload")) == NULL, "upload is last");
	ok(stage_index("planning") == 0 && stage_find("nope") == NULL, "stage lookup");
	ok(provider_lookup("audio", "espeak") != NULL && provider_lookup("audio", "still") == NULL, "provider table");
	ok(provider_lookup("broll", "command") == prov_command, "command serves every stage");
	return tap_done();
}
