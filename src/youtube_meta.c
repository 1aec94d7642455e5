/*
 * youtube_meta.c - the video resource sent to videos.insert, checked
 * against YouTube's limits before any byte is sent: title at most 100
 * characters without < or >, description at most 5,000 bytes without < or >
 * (the marker line included), tags at most 500 characters in all (commas
 * between tags count, a tag with a space counts its quotes).  status always
 * carries privacyStatus (an omitted one now means public),
 * selfDeclaredMadeForKids and containsSyntheticMedia.
 */
#define _GNU_SOURCE
#include "youtube.h"
#include <stdlib.h>
#include <string.h>

static const char *const privacies[] = { "private", "unlisted", "public", NULL };

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static int check_title(const char *t)
{
	if (!t || !*t) return err_set("metadata.json: final_title is empty; YouTube needs a title");
	if (utf8_chars(t) > 100)
		return err_set("metadata.json: the title has %zu characters; YouTube allows 100: shorten it",
			       utf8_chars(t));
	if (strpbrk(t, "<>")) return err_set("metadata.json: the title contains < or >, which YouTube refuses");
	return 0;
}

static int check_description(const char *d)
{
	if (strlen(d) > 5000)
		return err_set("metadata.json: the description is %zu bytes with the acog marker line; YouTube "
			       "allows 5000: shorten it",
			       strlen(d));
	if (strpbrk(d, "<>")) return err_set("metadata.json: the description contains < or >, which YouTube refuses");
	return 0;
}

static cJSON *tags_of(const cJSON *meta)
{
	const cJSON *t, *tags = cJSON_GetObjectItemCaseSensitive(meta, "tags");
	cJSON *out = cJSON_CreateArray();
	size_t total = 0;
	cJSON_ArrayForEach (t, tags) {
		if (!cJSON_IsString(t) || !*t->valuestring) continue;
		total += utf8_chars(t->valuestring) + (strchr(t->valuestring, ' ') ? 2 : 0) + (total ? 1 : 0);
		if (strpbrk(t->valuestring, "<>")) {
			err_set("metadata.json: tag '%s' contains < or >, which YouTube refuses", t->valuestring);
			cJSON_Delete(out);
			return NULL;
		}
		cJSON_AddItemToArray(out, cJSON_CreateString(t->valuestring));
	}
	if (total > 500) {
		err_set("metadata.json: the tags have %zu characters in all; YouTube allows 500: drop some", total);
		cJSON_Delete(out);
		return NULL;
	}
	return out;
}

static int privacy_ok(const char *p)
{
	for (int i = 0; privacies[i]; i++)
		if (!strcmp(p, privacies[i])) return 1;
	return 0;
}

static cJSON *status_of(const struct yt_job *job)
{
	const cJSON *o = job->ctx->provider;
	const char *privacy = json_str(o, "privacy", "private");
	cJSON *st;
	if (!privacy_ok(privacy)) {
		err_set("providers.upload.privacy is '%s'; use private, unlisted or public", privacy);
		return NULL;
	}
	st = cJSON_CreateObject();
	if (job->publish_at && time_parse_iso(job->publish_at) <= time_now()) {
		log_info(NULL, NULL, "youtube.publish_at", "publish_at %s is past: publishing at once",
			 job->publish_at);
	} else if (job->publish_at) {
		privacy = "private"; /* YouTube schedules only private videos */
		cJSON_AddStringToObject(st, "publishAt", job->publish_at);
	}
	cJSON_AddStringToObject(st, "privacyStatus", privacy);
	cJSON_AddBoolToObject(st, "selfDeclaredMadeForKids", json_bool(o, "made_for_kids", 0));
	cJSON_AddBoolToObject(st, "containsSyntheticMedia", json_bool(o, "synthetic_media", 1));
	return st;
}

static cJSON *snippet_of(const struct yt_job *job)
{
	const cJSON *o = job->ctx->provider, *m = job->meta;
	const char *title = json_str(m, "final_title", json_str(m, "title", ""));
	char *desc = xasprintf("%s\n\n[acog:%s]", json_str(m, "description", ""), job->marker);
	cJSON *s = NULL, *tags = NULL;
	if (check_title(title) < 0 || check_description(desc) < 0 || !(tags = tags_of(m))) goto out;
	s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "title", title);
	cJSON_AddStringToObject(s, "description", desc);
	cJSON_AddItemToObject(s, "tags", tags);
	if (json_str(o, "category_id", NULL)) cJSON_AddStringToObject(s, "categoryId", json_str(o, "category_id", ""));
	if (json_str(o, "default_language", NULL))
		cJSON_AddStringToObject(s, "defaultLanguage", json_str(o, "default_language", ""));
out:
	free(desc);
	return s;
}

cJSON *yt_meta_resource(const struct yt_job *job)
{
	cJSON *snippet = snippet_of(job), *status = snippet ? status_of(job) : NULL, *r;
	if (!status) {
		cJSON_Delete(snippet);
		return NULL;
	}
	r = cJSON_CreateObject();
	cJSON_AddItemToObject(r, "snippet", snippet);
	cJSON_AddItemToObject(r, "status", status);
	return r;
}
