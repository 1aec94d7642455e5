/*
 * qa_loudnorm.c - two-pass loudness normalisation of the narration (EBU
 * R128): the first pass measures it (the ebur128 filter's summary, and
 * astats for samples at full scale: clipping the QA report names), the
 * second is the loudnorm filter with the measured_* values and linear=true
 * that assembly puts on the audio of its one encode.  Pass one is not
 * loudnorm's own (print_format=json): that upsamples to 192 kHz and took
 * 1.2-1.9 s for a minute of narration on assembly's critical path, against
 * 0.2-0.4 s for ebur128, whose integrated loudness agrees within 0.1 LU.
 * Only a clipped narration gets loudnorm's own pass too, for its
 * target_offset (see CLIPPED_SHARE).
 *
 * Invariants: the target reaches ffmpeg as numbers we print, never as text
 * from a file; a narration too quiet to measure (silence) is left as it is
 * and the QA report says so, rather than amplified noise.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TP_HEADROOM \
	0.5 /* AAC 192k overshoots the PCM's true peak by ~0.2 dB; more headroom leaves dynamic mode short of -14 */
/* Speech has peaks 20 dB over its loudness: without evening them out first,
 * -14 LUFS under a -1 dBTP ceiling is out of reach of loudnorm's linear mode
 * and its dynamic mode stops about 2 LU short.  Both passes start with it. */
#define VOICE_COMPRESSOR "acompressor=threshold=-30dB:ratio=6:attack=3:release=60:makeup=12dB"
#define FULL_SCALE_DB -0.01

/* A narration with this share of its samples at full scale (QA's default
 * clipping limit) also gets loudnorm's own first pass: a clipped sentence
 * among clean ones leaves pass two's dynamic mode 1.2 LU short without its
 * target_offset (0-0.3 LU on unclipped narrations, measured). */
#define CLIPPED_SHARE 1e-4

/* ebur128's integrated loudness when no 400 ms block passed its absolute
 * gate (loudnorm says -inf): nothing to measure. */
#define EBUR128_FLOOR -70.0

/* The number after label in ebur128's summary s (strtod reads "-inf" too). */
static int summary_figure(const char *s, const char *label, double *v)
{
	const char *p = strstr(s, label);
	char *end;

	if (!p) return 0;
	*v = strtod(p + strlen(label), &end);
	return end != p + strlen(label);
}

/* ebur128's last "Summary:" block (it prints an empty one when the graph is
 * set up): the figures of pass one.  Labels are matched indented, so that
 * " Threshold:" is integrated loudness's relative gate (the first one), and
 * neither "LRA low:" nor astats' "Peak level dB:" is taken. */
static int ebur128_summary(const char *log, struct qa_narration *n)
{
	const char *s = NULL;

	for (const char *p = strstr(log, "Summary:"); p; p = strstr(p + 1, "Summary:")) s = p;
	if (!s || !summary_figure(s, "    I:", &n->input_i) || !summary_figure(s, "    Threshold:", &n->input_thresh) ||
	    !summary_figure(s, "    LRA:", &n->input_lra) || !summary_figure(s, "    Peak:", &n->input_tp))
		return err_set("ffmpeg's ebur128 printed no loudness summary");
	if (n->input_i <= EBUR128_FLOOR) n->input_i = -INFINITY;
	n->offset = 0;
	return 0;
}

/* The loudnorm JSON block ffmpeg printed last: the figures of its first pass. */
static int loudnorm_json(const char *log, struct qa_narration *n)
{
	const char *p = strstr(log, "Parsed_loudnorm"), *open;
	cJSON *j;

	if (!p || !(open = strchr(p, '{')) || !(j = cJSON_Parse(open)))
		return err_set("ffmpeg's loudnorm printed no measurement");
	n->input_i = atof(json_str(j, "input_i", "nan"));
	n->input_tp = atof(json_str(j, "input_tp", "nan"));
	n->input_lra = atof(json_str(j, "input_lra", "nan"));
	n->input_thresh = atof(json_str(j, "input_thresh", "nan"));
	n->offset = atof(json_str(j, "target_offset", "0"));
	cJSON_Delete(j);
	return 0;
}

/* astats' overall figures: samples at the peak, and whether the peak is full scale. */
static void astats(const char *log, struct qa_narration *n)
{
	const char *p;
	double peak = NAN, count = 0;

	if ((p = strstr(log, "Peak level dB: "))) peak = atof(p + 15);
	if ((p = strstr(log, "Peak count: "))) count = atof(p + 12);
	if ((p = strstr(log, "Number of samples: "))) n->samples = atof(p + 19);
	n->peak_db = peak;
	n->clipped = peak >= FULL_SCALE_DB ? count : 0;
}

/* The voice compressor first, as in pass two (which runs it at loudnorm's
 * 192 kHz, ebur128 here at the narration's rate: on speech the true peak
 * reads ~0.5 dB lower than loudnorm's, the loudness the same); astats on
 * the narration as it is. */
#define MEASURE_GRAPH(meter) \
	"[0:a]asplit=2[a][b];[a]" VOICE_COMPRESSOR "," meter "[o1];" \
	"[b]astats=measure_perchannel=none:measure_overall=Peak_level+Peak_count+Number_of_samples" \
	"[o2]"

/* One ffmpeg pass over the narration with graph; parse reads the meter's figures. */
static int measure(const char *audio, const char *graph, int (*parse)(const char *, struct qa_narration *),
		   struct qa_narration *n, int timeout_s)
{
	const char *argv[] = { "ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i",   audio, "-filter_complex",
			       graph,    "-map",     "[o1]",         "-map",     "[o2]", "-f",  "null",
			       "-",      NULL };
	char *log = qa_ffmpeg_log(argv, audio, timeout_s);
	int rc = log ? parse(log, n) : -1;

	if (rc == 0) astats(log, n);
	free(log);
	return rc;
}

int qa_loudness_measure(const char *audio, double target_i, double target_tp, struct qa_narration *n, int timeout_s)
{
	char *g;
	int rc;

	if (measure(audio, MEASURE_GRAPH("ebur128=peak=true:framelog=verbose"), ebur128_summary, n, timeout_s) < 0)
		return -1;
	if (!(n->samples > 0 && n->clipped >= CLIPPED_SHARE * n->samples)) return 0;
	g = xasprintf(MEASURE_GRAPH("loudnorm=I=%.1f:TP=%.1f:LRA=11:print_format=json"), target_i,
		      target_tp - TP_HEADROOM);
	rc = measure(audio, g, loudnorm_json, n, timeout_s);
	free(g);
	return rc;
}

/* The pass-two filter, or NULL when the narration is too quiet to measure
 * (err_set says so).  LRA is at least the measured one, so linear mode holds. */
char *qa_loudness_filter(const struct qa_narration *n, double target_i, double target_tp)
{
	double lra = fmin(20, fmax(11, ceil(n->input_lra) + 1));
	if (!isfinite(n->input_i) || !isfinite(n->input_tp) || n->input_i < -70) {
		err_set("the narration is too quiet to measure (integrated loudness %.1f LUFS)", n->input_i);
		return NULL;
	}
	return xasprintf(VOICE_COMPRESSOR
			 ",loudnorm=I=%.1f:TP=%.1f:LRA=%.0f:measured_I=%.2f:measured_TP=%.2f:measured_LRA=%.2f:"
			 "measured_thresh=%.2f:offset=%.2f:linear=true,aresample=48000,aformat=channel_layouts=mono",
			 target_i, target_tp - TP_HEADROOM, lra, n->input_i, n->input_tp,
			 isfinite(n->input_lra) ? n->input_lra : 0, n->input_thresh, n->offset);
}
