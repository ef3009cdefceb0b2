/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Folded stacks and the SVG flame graph (flame.h). The SVG is kmemscope's
 * own (Debian packages no renderer to call): frames as <g class="f"> with a
 * <title>, a <rect> and a label, laid out here so that viewers without
 * scripts (an <img> in a README) show the picture; the embedded script adds
 * hover details, click to zoom and search, and re-lays labels on zoom.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "agg.h"
#include "flame.h"
#include "profile.h"

#define FRAME_H		16	/* px per stack level */
#define FONT_PX		12
#define CHAR_PX		(FONT_PX * 0.59)	/* average Verdana advance */
#define TOP_PX		64	/* title, subtitle, buttons */
#define BOTTOM_PX	28	/* hover details, search share */
#define NAME_MAX_LEN	256

static struct flame_node *node_new(struct flame *f, struct flame_node *parent, const char *name,
				   int family)
{
	struct flame_node *n = calloc(1, sizeof(*n));

	if (!n || !(n->name = strdup(name))) {
		free(n);
		return NULL;
	}
	n->family = family;
	n->parent = parent;
	n->depth = parent ? parent->depth + 1 : 0;
	if (n->depth > f->max_depth)
		f->max_depth = n->depth;
	f->nr_nodes++;
	return n;
}

/* the child of n named name: equal frames merge here */
static struct flame_node *child_get(struct flame *f, struct flame_node *n, const char *name,
				    int family)
{
	struct flame_node *c;

	for (c = n->child; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	c = node_new(f, n, name, family);
	if (c) {
		c->next = n->child;
		n->child = c;
	}
	return c;
}

static int add_sample(struct flame *f, const struct profile *p, const struct profile_sample *s,
		      __u64 v)
{
	struct flame_node *n = f->root;
	char name[NAME_MAX_LEN];

	profile__family_frame(s->family, name, sizeof(name));
	n->value += v;
	for (int i = s->nframes; n; i--) {
		n = child_get(f, n, name, s->family);
		if (!n)
			return -ENOMEM;
		n->value += v;
		if (!i)
			break;
		profile__frame_name(p, s->frames[i - 1], name, sizeof(name));
	}
	n->self += v;
	return 0;
}

static int name_order(const void *pa, const void *pb)
{
	const struct flame_node *a = *(const struct flame_node *const *)pa;
	const struct flame_node *b = *(const struct flame_node *const *)pb;

	return strcmp(a->name, b->name);
}

/* children in name order (flame graphs sort so; output is then stable), x of each */
static int arrange(struct flame_node *n)
{
	struct flame_node **v, *c;
	size_t nr = 0, i;
	__u64 x = n->x;

	for (c = n->child; c; c = c->next)
		nr++;
	if (!nr)
		return 0;
	v = malloc(nr * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0, c = n->child; c; c = c->next)
		v[i++] = c;
	qsort(v, nr, sizeof(*v), name_order);
	n->child = v[0];
	for (i = 0; i < nr; i++) {
		v[i]->next = i + 1 < nr ? v[i + 1] : NULL;
		v[i]->x = x;
		x += v[i]->value;
	}
	free(v);
	for (c = n->child; c; c = c->next)
		if (arrange(c))
			return -ENOMEM;
	return 0;
}

int flame__build(struct flame *f, const struct profile *p, int value)
{
	memset(f, 0, sizeof(*f));
	f->value = value;
	f->root = node_new(f, NULL, "all", -1);
	if (!f->root)
		return -ENOMEM;
	for (size_t i = 0; i < p->nr; i++) {
		__u64 v = p->samples[i].v[value];

		if (v && add_sample(f, p, &p->samples[i], v))
			return -ENOMEM;
	}
	return arrange(f->root);
}

static void node_free(struct flame_node *n)
{
	while (n) {
		struct flame_node *next = n->next;

		node_free(n->child);
		free(n->name);
		free(n);
		n = next;
	}
}

void flame__free(struct flame *f)
{
	node_free(f->root);
	memset(f, 0, sizeof(*f));
}

/* ---- folded ---- */

static void folded(const struct flame_node *n, char *path, size_t len, FILE *out)
{
	size_t at = strlen(path);

	snprintf(path + at, len - at, "%s%s", at ? ";" : "", n->name);
	if (n->self)
		fprintf(out, "%s %llu\n", path, (unsigned long long)n->self);
	for (const struct flame_node *c = n->child; c; c = c->next)
		folded(c, path, len, out);
	path[at] = '\0';
}

int flame__folded(const struct flame *f, FILE *out)
{
	size_t len = (size_t)(f->max_depth + 1) * NAME_MAX_LEN;
	char *path = calloc(1, len);

	if (!path)
		return -ENOMEM;
	for (const struct flame_node *c = f->root->child; c; c = c->next)
		folded(c, path, len, out);
	free(path);
	return ferror(out) ? -EIO : 0;
}

/* ---- SVG ---- */

void flame__px(const struct flame *f, const struct flame_node *n, double width, double *x,
	       double *w)
{
	double scale = f->root->value ? (width - 2 * FLAME_PAD) / f->root->value : 0;

	*x = FLAME_PAD + n->x * scale;
	*w = n->value * scale;
}

/*
 * Text and attribute values: the five markup characters as entities; bytes
 * XML cannot hold (controls) and non-ASCII (a file's names need not be
 * UTF-8) as '?', so that any name gives well-formed XML.
 */
static void xml_text(FILE *out, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max; i++) {
		unsigned char c = s[i];

		switch (c) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		default: fputc(c < 0x20 || c >= 0x7f ? '?' : c, out);
		}
	}
}

/* base colour of a family, lightened per frame by a hash of its name */
static const unsigned char fam_rgb[KMS_FAM_MAX][3] = {
	[KMS_FAM_KMALLOC] = { 226, 88, 34 },
	[KMS_FAM_CACHE] = { 222, 164, 20 },
	[KMS_FAM_PAGE] = { 62, 160, 70 },
	[KMS_FAM_VMALLOC] = { 52, 120, 214 },
	[KMS_FAM_DMA] = { 150, 80, 200 },
	[KMS_FAM_PERCPU] = { 30, 170, 170 },
};

static void fill_rgb(const struct flame_node *n, char *buf, size_t len)
{
	unsigned int h = 2166136261u;
	double t;
	int c[3];

	if (n->family < 0 || n->family >= KMS_FAM_MAX) {
		snprintf(buf, len, "rgb(190,190,190)");
		return;
	}
	for (const char *s = n->name; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	t = (h % 1000) / 1000.0 * 0.45;
	for (int i = 0; i < 3; i++)
		c[i] = fam_rgb[n->family][i] + (int)((255 - fam_rgb[n->family][i]) * t);
	snprintf(buf, len, "rgb(%d,%d,%d)", c[0], c[1], c[2]);
}

static void frame_svg(const struct flame *f, const struct flame_node *n, double height, FILE *out)
{
	const char *unit = profile_value_unit(f->value);
	double x, w, y = height - BOTTOM_PX - (n->depth + 1) * FRAME_H;
	size_t chars;
	char fill[32];

	flame__px(f, n, FLAME_WIDTH, &x, &w);
	fill_rgb(n, fill, sizeof(fill));
	fprintf(out, "<g class=\"f\" data-x=\"%llu\" data-v=\"%llu\" data-d=\"%d\" data-n=\"",
		(unsigned long long)n->x, (unsigned long long)n->value, n->depth);
	xml_text(out, n->name, SIZE_MAX);
	fputs("\"><title>", out);
	xml_text(out, n->name, SIZE_MAX);
	fprintf(out, " (%llu %s, %.2f%%)</title>", (unsigned long long)n->value, unit,
		100.0 * n->value / f->root->value);
	fprintf(out, "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%d\" fill=\"%s\" "
		"rx=\"2\"/><text x=\"%.1f\" y=\"%.0f\">", x, y, w, FRAME_H - 1, fill, x + 3,
		y + FRAME_H - 4);
	/* the label: as much of the name as fits, ".." where cut (the script does the same) */
	chars = w > 6 ? (size_t)((w - 6) / CHAR_PX) : 0;
	if (chars >= 3) {
		if (strlen(n->name) <= chars) {
			xml_text(out, n->name, SIZE_MAX);
		} else {
			xml_text(out, n->name, chars - 2);
			fputs("..", out);
		}
	}
	fputs("</text></g>\n", out);
}

/* the frames wide enough to draw (a narrower frame's children are narrower): out NULL counts them */
static size_t frames_svg(const struct flame *f, const struct flame_node *n, double height,
			 FILE *out)
{
	size_t drawn = 1;
	double x, w;

	flame__px(f, n, FLAME_WIDTH, &x, &w);
	if (!f->root->value || w < FLAME_MIN_PX)
		return 0;
	if (out)
		frame_svg(f, n, height, out);
	for (const struct flame_node *c = n->child; c; c = c->next)
		drawn += frames_svg(f, c, height, out);
	return drawn;
}

/*
 * Hover, zoom and search. A URL fragment does what a click would
 * (#zoom=NAME zooms to the first frame so named, #search=REGEX searches),
 * which also lets a headless browser check the script.
 */
static const char script[] =
	"var W=%d,PAD=%d,MIN=%g,CW=%g,total,frames,details,matched,unzoom,hl='rgb(230,0,230)';\n"
	"function num(g,a){return parseFloat(g.getAttribute(a));}\n"
	"function label(g,w){var t=g.querySelector('text'),s=g.getAttribute('data-n'),"
	"n=Math.floor((w-6)/CW);t.textContent=n<3?'':s.length<=n?s:s.substring(0,n-2)+'..';}\n"
	"function place(g,x,w){var r=g.querySelector('rect');r.setAttribute('x',x.toFixed(1));"
	"r.setAttribute('width',w.toFixed(1));g.querySelector('text').setAttribute('x',"
	"(x+3).toFixed(1));label(g,w);}\n"
	"function zoom(z){var zx=num(z,'data-x'),zv=num(z,'data-v'),zd=num(z,'data-d'),"
	"s=(W-2*PAD)/zv;\n"
	" frames.forEach(function(g){var x=num(g,'data-x'),v=num(g,'data-v'),d=num(g,'data-d');\n"
	"  var anc=d<zd&&x<=zx&&x+v>=zx+zv,inside=d>=zd&&x>=zx&&x+v<=zx+zv&&v*s>=MIN;\n"
	"  g.style.display=anc||inside?'':'none';g.style.opacity=anc?'0.6':'';\n"
	"  if(anc)place(g,PAD,W-2*PAD);else if(inside)place(g,PAD+(x-zx)*s,v*s);});\n"
	" unzoom.style.opacity=z===frames[0]?'0':'1';}\n"
	"function search(re){var spans=[],sum=0,end=-1;\n"
	" frames.forEach(function(g){var r=g.querySelector('rect');\n"
	"  if(!g.hasAttribute('data-fill'))g.setAttribute('data-fill',r.getAttribute('fill'));\n"
	"  if(re&&re.test(g.getAttribute('data-n'))){r.setAttribute('fill',hl);g.setAttribute('class','f m');"
	"spans.push([num(g,'data-x'),num(g,'data-v')]);}\n"
	"  else{r.setAttribute('fill',g.getAttribute('data-fill'));g.setAttribute('class','f');}});\n"
	" spans.sort(function(a,b){return a[0]-b[0];});\n"
	" spans.forEach(function(p){var a=Math.max(p[0],end),b=p[0]+p[1];if(b>a)sum+=b-a;"
	"if(b>end)end=b;});\n"
	" matched.textContent=re?'Matched: '+(100*sum/total).toFixed(2)+'%%':'';}\n"
	"function ask(){var t=prompt('Search frames (regular expression):','');if(t===null)return;"
	"try{search(t?new RegExp(t):null);}catch(e){alert(e);}}\n"
	"function init(){frames=Array.prototype.slice.call(document.querySelectorAll('g.f'));\n"
	" if(!frames.length)return;total=num(frames[0],'data-v');details=document.getElementById('details');\n"
	" matched=document.getElementById('matched');unzoom=document.getElementById('unzoom');\n"
	" frames.forEach(function(g){\n"
	"  g.addEventListener('mouseover',function(){details.textContent="
	"g.querySelector('title').textContent;});\n"
	"  g.addEventListener('mouseout',function(){details.textContent='';});\n"
	"  g.addEventListener('click',function(){zoom(g);});});\n"
	" unzoom.addEventListener('click',function(){zoom(frames[0]);});\n"
	" document.getElementById('search').addEventListener('click',ask);\n"
	" document.addEventListener('keydown',function(e){if((e.ctrlKey||e.metaKey)&&e.key==='f')"
	"{e.preventDefault();ask();}else if(e.key==='Escape'){zoom(frames[0]);search(null);}});\n"
	" var h=decodeURIComponent(location.hash.substring(1)),m;\n"
	" if((m=/^zoom=(.*)$/.exec(h)))frames.forEach(function(g){if(g.getAttribute('data-n')===m[1]"
	"&&unzoom.style.opacity!=='1')zoom(g);});\n"
	" if((m=/^search=(.*)$/.exec(h)))search(new RegExp(m[1]));}\n"
	"window.addEventListener('load',init);\n";

static void title_svg(const struct flame *f, const struct profile *p, FILE *out)
{
	const char *cmd = p->o.command ? p->o.command : "kmemscope";

	fputs("<text id=\"title\" x=\"50%\" y=\"24\" text-anchor=\"middle\" font-size=\"17\">"
	      "kmemscope ", out);
	xml_text(out, cmd, SIZE_MAX);
	fprintf(out, ": %s by kernel stack</text>\n", profile_value_text(f->value));
	fputs("<text id=\"subtitle\" x=\"50%\" y=\"42\" text-anchor=\"middle\" fill=\"#555\">"
	      "kernel ", out);
	xml_text(out, p->o.kernel ? p->o.kernel : "unknown", SIZE_MAX);
	if (p->duration_ns)
		fprintf(out, ", %.1f s", p->duration_ns / 1e9);
	if (p->o.source)
		fprintf(out, ", %s", !strcmp(p->o.source, "file") ? "from a trace file" : "live");
	fprintf(out, ", %llu %s in total", (unsigned long long)f->root->value,
		profile_value_text(f->value));
	if (p->o.quality)
		fprintf(out, p->complete ? ", no records lost" :
			", records lost or skipped (%llu): values may fall short",
			(unsigned long long)p->lost);
	fputs("</text>\n", out);
}

static void legend_svg(const struct flame *f, FILE *out)
{
	double x = FLAME_WIDTH - FLAME_PAD;

	/* right to left, so the legend ends at the right margin */
	for (int fam = KMS_FAM_MAX - 1; fam >= 0; fam--) {
		const struct flame_node *c;
		const char *name = kms_family_name(fam);

		for (c = f->root->child; c && c->family != fam; c = c->next)
			;
		if (!c)
			continue;
		x -= strlen(name) * CHAR_PX + 22;
		fprintf(out, "<rect x=\"%.1f\" y=\"50\" width=\"10\" height=\"10\" "
			"fill=\"rgb(%d,%d,%d)\"/><text x=\"%.1f\" y=\"59\">%s</text>\n", x,
			fam_rgb[fam][0], fam_rgb[fam][1], fam_rgb[fam][2], x + 14, name);
	}
}

int flame__svg(const struct flame *f, const struct profile *p, FILE *out)
{
	double height = TOP_PX + (f->max_depth + 1) * FRAME_H + BOTTOM_PX;

	fprintf(out, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
		"<svg version=\"1.1\" width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\" "
		"xmlns=\"http://www.w3.org/2000/svg\" font-family=\"Verdana, sans-serif\" "
		"font-size=\"%d\" data-frames=\"%zu\">\n",
		FLAME_WIDTH, height, FLAME_WIDTH, height, FONT_PX,
		frames_svg(f, f->root, height, NULL));
	fputs("<style>g.f:hover rect{stroke:#000;stroke-width:0.5}g.f{cursor:pointer}"
	      "#unzoom,#search{cursor:pointer}</style>\n", out);
	fprintf(out, "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f4\"/>\n");
	title_svg(f, p, out);
	fputs("<text id=\"unzoom\" x=\"10\" y=\"24\" style=\"opacity:0\">Reset zoom</text>\n"
	      "<text id=\"search\" x=\"10\" y=\"59\">Search (Ctrl-F)</text>\n", out);
	legend_svg(f, out);
	fprintf(out, "<text id=\"details\" x=\"10\" y=\"%.0f\"> </text>\n"
		"<text id=\"matched\" x=\"%d\" y=\"%.0f\" text-anchor=\"end\"> </text>\n",
		height - 10, FLAME_WIDTH - FLAME_PAD, height - 10);
	frames_svg(f, f->root, height, out);
	fputs("<script><![CDATA[\n", out);
	fprintf(out, script, FLAME_WIDTH, FLAME_PAD, FLAME_MIN_PX, CHAR_PX);
	fputs("]]></script>\n</svg>\n", out);
	return ferror(out) ? -EIO : 0;
}
