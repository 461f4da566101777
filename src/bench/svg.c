/*
 * svg.c - line plots written as SVG by hand (see bench.h): axes with
 * 1-2-5 ticks (or decades on a log axis, x or y), one polyline with
 * markers per series (points ordered by x), a legend on the right.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W 760
#define H 460
#define ML 78     /* margins: left, right (legend), top, bottom */
#define MR 190
#define MT 44
#define MB 58

static const char *const colors[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
};
#define NCOLORS (sizeof colors / sizeof colors[0])

static void put_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A 1, 2 or 5 times a power of ten near range/n. */
static double nice_step(double range, int n)
{
    double raw = range / n;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void fmt_tick(char *buf, size_t len, double v)
{
    const char *p;
    double s = si_prefix(v, &p);
    snprintf(buf, len, "%g%s", s, p);
}

struct pt {
    double x, y;
};

static int cmp_pt(const void *a, const void *b)
{
    const struct pt *p = a, *q = b;
    return p->x < q->x ? -1 : p->x > q->x;
}

/* Decades covering [lo, hi] on a log axis: their exponents. */
static void log_range(double lo, double hi, double *elo, double *ehi)
{
    if (!(lo > 0) || !(hi > 0) || isinf(lo)) {
        lo = 1;
        hi = 10;
    }
    *elo = floor(log10(lo));
    *ehi = ceil(log10(hi));
    if (*ehi <= *elo)
        *ehi = *elo + 1;
}

int svg_plot(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const struct svg_series *s, unsigned ns, int flags)
{
    int ylog = flags & SVG_YLOG, xlog = flags & SVG_XLOG;
    double xmin = INFINITY, xmax = 0, ymin = INFINITY, ymax = 0;
    unsigned npts = 0;
    for (unsigned i = 0; i < ns; i++)
        for (unsigned k = 0; k < s[i].n; k++) {
            double x = s[i].x[k], y = s[i].y[k];
            if (isnan(x) || isnan(y) || (ylog && y <= 0) || (xlog && x <= 0))
                continue;
            npts++;
            if (x < xmin) xmin = x;
            if (x > xmax) xmax = x;
            if (y > ymax) ymax = y;
            if (y < ymin) ymin = y;
        }
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    double pw = W - ML - MR, ph = H - MT - MB;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H, W, H, W, H);
    fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">", ML);
    put_text(f, title);
    fprintf(f, "</text>\n");

    /* axes ranges */
    double xlo = 0, xstep = 0;
    if (xlog) {
        log_range(xmin, xmax, &xlo, &xmax);
    } else {
        if (xmax <= 0)
            xmax = 1;
        xstep = nice_step(xmax, 5);
        xmax = ceil(xmax / xstep) * xstep;
    }
    double ylo, yhi, ystep = 0;
    if (ylog) {
        log_range(ymin, ymax, &ylo, &yhi);
    } else {
        if (ymax <= 0)
            ymax = 1;
        if (ymax > 100 && ymax < 101)
            ymax = 100;     /* a percentage a hair over 100: keep the axis at 100 */
        ystep = nice_step(ymax, 5);
        ylo = 0;
        yhi = ceil(ymax / ystep) * ystep;
    }
#define XP(x) (ML + ((xlog ? log10(x) : (x)) - xlo) / (xmax - xlo) * pw)
#define YP(y) (MT + ph - ((ylog ? log10(y) : (y)) - ylo) / (yhi - ylo) * ph)

    /* grid and ticks */
    char t[32];
    fprintf(f, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
    if (xlog) {
        for (double e = xlo; e <= xmax; e++)
            for (int m = 1; m < 10; m++) {
                double x = m * pow(10, e);
                if (log10(x) > xmax + 1e-9)
                    break;
                fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\"%s/>\n", XP(x), MT,
                        XP(x), MT + ph, m == 1 ? "" : " stroke=\"#f0f0f0\"");
            }
    } else {
        for (double x = 0; x <= xmax * 1.0001; x += xstep)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\"/>\n", XP(x), MT,
                    XP(x), MT + ph);
    }
    if (ylog) {
        for (double e = ylo; e <= yhi; e++)
            for (int m = 1; m < 10; m++) {
                double y = m * pow(10, e);
                if (log10(y) > yhi + 1e-9)
                    break;
                fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"%s/>\n", ML,
                        YP(y), ML + pw, YP(y), m == 1 ? "" : " stroke=\"#f0f0f0\"");
            }
    } else {
        for (double y = 0; y <= yhi * 1.0001; y += ystep)
            fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ML, YP(y),
                    ML + pw, YP(y));
    }
    fprintf(f, "</g>\n<g fill=\"#333333\">\n");
    if (xlog) {
        for (double e = xlo; e <= xmax; e++) {
            fmt_tick(t, sizeof t, pow(10, e));
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                    XP(pow(10, e)), MT + ph + 16, t);
        }
    } else {
        for (double x = 0; x <= xmax * 1.0001; x += xstep) {
            fmt_tick(t, sizeof t, x);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", XP(x),
                    MT + ph + 16, t);
        }
    }
    if (ylog) {
        for (double e = ylo; e <= yhi; e++) {
            fmt_tick(t, sizeof t, pow(10, e));
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ML - 6,
                    YP(pow(10, e)) + 4, t);
        }
    } else {
        for (double y = 0; y <= yhi * 1.0001; y += ystep) {
            fmt_tick(t, sizeof t, y);
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ML - 6,
                    YP(y) + 4, t);
        }
    }
    fprintf(f, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
               "stroke=\"#333333\"/>\n", ML, MT, pw, ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", ML + pw / 2, H - 14);
    put_text(f, xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(18,%.1f) rotate(-90)\" "
               "text-anchor=\"middle\">", MT + ph / 2);
    put_text(f, ylabel);
    fprintf(f, "</text>\n");

    /* series */
    for (unsigned i = 0; i < ns; i++) {
        const char *col = colors[i % NCOLORS];
        struct pt *p = calloc(s[i].n ? s[i].n : 1, sizeof *p);
        if (!p) {
            fclose(f);
            errno = ENOMEM;
            return -1;
        }
        unsigned n = 0;
        for (unsigned k = 0; k < s[i].n; k++) {
            double x = s[i].x[k], y = s[i].y[k];
            if (isnan(x) || isnan(y) || (ylog && y <= 0) || (xlog && x <= 0))
                continue;
            p[n].x = x;
            p[n].y = y;
            n++;
        }
        qsort(p, n, sizeof *p, cmp_pt);
        if (n > 1) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
            for (unsigned k = 0; k < n; k++)
                fprintf(f, "%s%.1f,%.1f", k ? " " : "", XP(p[k].x), YP(p[k].y));
            fprintf(f, "\"/>\n");
        }
        for (unsigned k = 0; k < n; k++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", XP(p[k].x),
                    YP(p[k].y), col);
        free(p);
        double ly = MT + 10 + i * 20;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2\"/><circle cx=\"%.0f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>"
                   "<text x=\"%.0f\" y=\"%.1f\">", ML + pw + 14, ly, ML + pw + 40, ly, col,
                ML + pw + 27, ly, col, ML + pw + 48, ly + 4);
        put_text(f, s[i].name);
        fprintf(f, "</text>\n");
    }
    if (!npts)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#999999\">no "
                   "data</text>\n", ML + pw / 2, MT + ph / 2);
    fprintf(f, "</svg>\n");
#undef XP
#undef YP
    return fclose(f) == 0 ? 0 : -1;
}
