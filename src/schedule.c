/*
 * schedule.c - when an approved episode publishes.  At approval the episode
 * gets episodes.scheduled_at: the idea's publish_at when it asked for a
 * time, else the next free slot of the channel's `cadence` (a slot is free
 * when no other episode of the channel has it), else nothing (at once).
 * The time is also written to the episode's schedule.json, which is how
 * the upload provider (a separate process) learns it; see schedule_file.c.
 * A slot is assigned once: a re-approval keeps it.  Called inside the
 * approval transaction, so two approvals never take the same slot.
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sched_row {
	char *scheduled_at, *idea, *channel, *channel_db_id, *gate;
};

static void row_free(struct sched_row *r)
{
	free(r->scheduled_at), free(r->idea), free(r->channel), free(r->channel_db_id), free(r->gate);
}

/* Only the gate right before the upload stage schedules. */
static int gate_before_upload(const char *gate)
{
	const struct stage_def *s = gate ? stage_find(gate) : NULL;
	return s && stage_next(s) && !strcmp(stage_next(s)->name, "upload");
}

static int row_load(sqlite3 *db, const char *id, struct sched_row *r)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT e.scheduled_at, e.idea, c.slug, c.id, e.gate_pending FROM episodes e"
				   " JOIN channels c ON c.id = e.channel_id WHERE e.id = ?",
				   "s", id);
	int rc = st && sqlite3_step(st) == SQLITE_ROW ? 0 : err_set("episode %s not found", id);

	memset(r, 0, sizeof *r);
	if (rc == 0) {
		r->scheduled_at = db_col_str(st, 0), r->idea = db_col_str(st, 1);
		r->channel = db_col_str(st, 2), r->channel_db_id = db_col_str(st, 3);
		r->gate = db_col_str(st, 4);
	}
	sqlite3_finalize(st);
	return rc;
}

static int slot_taken(sqlite3 *db, const struct sched_row *r, const char *id, const char *iso)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT 1 FROM episodes WHERE channel_id = ? AND id <> ?"
				   " AND scheduled_at = ? AND deleted_at IS NULL",
				   "sss", r->channel_db_id, id, iso);
	int taken = !st || sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return taken;
}

/* The channel cadence's first free slot after now; 0 = the channel has none. */
static int next_free_slot(sqlite3 *db, struct config *c, const struct sched_row *r, const char *id, char out[32])
{
	struct channel *ch = config_channel(c, r->channel);
	const char *text = ch ? json_str(ch->cfg, "cadence", NULL) : NULL;
	struct cadence cad;
	double t = time_now();

	out[0] = 0;
	if (!text) return 0;
	if (cadence_parse(text, &cad) < 0)
		return err_set("%s/channel.yaml: %s; fix the cadence and approve again", ch->dir, err_msg());
	for (int i = 0; i < 100000; i++) {
		if ((t = cadence_next(&cad, t)) < 0) break;
		cadence_iso(t, out);
		if (!slot_taken(db, r, id, out)) return 0;
	}
	return err_set("%s/channel.yaml: cadence '%s' has no free slot in the next 100000", ch->dir, text);
}

int schedule_assign(sqlite3 *db, struct config *c, const char *episode_id)
{
	struct sched_row r;
	cJSON *idea = NULL;
	char at[32] = "", *dir = NULL;
	const char *asked, *source = "idea";
	int rc = -1;

	if (row_load(db, episode_id, &r) < 0) return -1;
	if (!gate_before_upload(r.gate)) {
		row_free(&r);
		return 0;
	}
	dir = episode_dir(c->root, r.channel, episode_id);
	idea = cJSON_Parse(r.idea ? r.idea : "{}");
	asked = json_str(idea, "publish_at", NULL);
	if (r.scheduled_at)
		snprintf(at, sizeof at, "%s", r.scheduled_at), source = "kept";
	else if (asked && cadence_parse_instant(asked) >= 0)
		cadence_iso(cadence_parse_instant(asked), at);
	else if (next_free_slot(db, c, &r, episode_id, at) < 0)
		goto out;
	else
		source = "cadence";
	rc = 0;
	if (!at[0]) goto out; /* no time asked, no cadence: at once */
	if (!r.scheduled_at)
		rc = db_exec(db, "UPDATE episodes SET scheduled_at = ?," DB_TOUCH " WHERE id = ?", "ss", at,
			     episode_id);
	if (rc == 0) rc = schedule_file_write(dir, at, strcmp(source, "kept") ? source : asked ? "idea" : "cadence");
	if (rc == 0 && strcmp(source, "kept"))
		log_info(episode_id, dir, "schedule.assigned", "publishes at %s (%s%s)", at, source,
			 time_now() >= cadence_parse_instant(at) ? "; already past, so at once" : "");
out:
	cJSON_Delete(idea);
	free(dir);
	row_free(&r);
	return rc;
}
