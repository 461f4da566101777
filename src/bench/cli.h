/*
 * cli.h - command-line pieces shared by `run` and `sweep` (main.c).
 */
#ifndef LWV_BENCH_CLI_H
#define LWV_BENCH_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "bench.h"

/* getopt_long values of the table's options without a letter: CLI_ROW +
 * row; a command's own options use letters or values from CLI_OWN up. */
#define CLI_ROW 256
#define CLI_OWN 512
#define CLI_MAX_ROWS 40
#define CLI_MAX_OPTS 64

struct cfg_opt;

/* A command's long options: the table's rows (common ones, and `run`'s if
 * asked) then the command's own. */
struct cli {
    struct option longopts[CLI_MAX_OPTS + 1];
    const struct cfg_opt *rows[CLI_MAX_ROWS];
    unsigned nrows, nopts;
};

void cli_init(struct cli *cli, int with_run_options, const struct option *own);
/* Applies getopt_long's answer o if it is a table option: 0, or -1 with
 * what is wrong in err; 1 if o is not a table option. */
int cli_option(const struct cli *cli, int o, const char *arg, struct bench_cfg *c, char *err,
               size_t errlen);
/* Everything a command's getopt_long loop does not handle itself: the
 * table's options, unknown ones and missing values.  0, or -1 after saying
 * what was wrong on stderr (exit with EXIT_USAGE). */
int cli_take(const struct cli *cli, const char *cmd, int o, char **argv, struct bench_cfg *c);
/* The long name of getopt_long's answer o (a table or a command option). */
const char *cli_option_name(const struct cli *cli, int o);

int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
int parse_double(const char *s, double min, double max, double *out);
int parse_rate(const char *s, double *out);
void sweep_usage(FILE *f);

#endif
