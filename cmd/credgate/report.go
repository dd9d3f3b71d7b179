package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/credgate/credgate/client"
)

// What follows a check, from the command line, over the API: feedback,
// overdue feedback, statistics, the monthly report and coverage.

const clientFlagsUsage = `
Every command takes:
  --url URL             credgate's base URL (env CREDGATE_URL; default http://localhost:8080)
  --credentials FILE    the credential to call with, as JSON {client_id, client_secret}: a partner's
                        for its own feedback and approvals; when given, it wins over
                        CREDGATE_ADMIN_CLIENT_ID and CREDGATE_ADMIN_CLIENT_SECRET, which are ignored
                        (default: those two variables, else the administrator's
                        DATA-DIR/admin-credentials.json)
  --data-dir DIR        the server's data dir (env CREDGATE_DATA_DIR; default ./data)
  --client-id ID        client id (env CREDGATE_ADMIN_CLIENT_ID), with CREDGATE_ADMIN_CLIENT_SECRET
                        or the credentials file whose id it is: an id is never paired with
                        another credential's secret
  --json                print the API's JSON answer
`

const feedbackUsage = `Usage: credgate feedback COMMAND [flags]

Execution feedback (执行反馈): what a partner did with a check's answer.

Commands:
  submit CHECK_ID --file FEEDBACK.json
                 report on a check (the body of POST /v1/checks/{id}/feedback; "-" reads standard
                 input); a correction names the current feedback in "corrects"
  show CHECK_ID  every feedback on a check, corrections included
  overdue [--partner CLIENT_ID] [--limit N]
                 checks whose feedback is overdue (administrators and auditors)
` + clientFlagsUsage

const statsUsage = `Usage: credgate stats --from TIME --to TIME [--by total|partner|action|list|region] [--monthly]
                      [--partner CLIENT_ID] [flags]

Tracking statistics of the checks made in [from, to) (RFC 3339 times, or YYYY-MM-DD in UTC+8):
checks by outcome, feedback expected and received, measures applied, overdue feedback
(administrators and auditors).
` + clientFlagsUsage

const reportUsage = `Usage: credgate report monthly --month YYYY-MM [--format csv|json] [--out FILE] [flags]

The monthly report of checks and feedback, in total and by partner, action, list and region,
as the credit office files it by the 3rd and the 10th of the next month (administrators and
auditors).
` + clientFlagsUsage

const coverageUsage = `Usage: credgate coverage [--window-days N] [--partner CLIENT_ID] APPROVALS.csv

Which approvals had no check of the subject for the action in the window before them (应查必查),
and which followed a prohibit or restrict answer without feedback reporting the approval. The
file (header subject_id,action,approved_at[,reference]) is streamed to the server; a partner's
approvals are compared with its own checks.
` + clientFlagsUsage

// parseClientArgs parses flags that may stand before or after the
// positional arguments.
func parseClientArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func printJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		_, err = w.Write(append(raw, '\n'))
		return err
	}
	_, err := w.Write(append(b.Bytes(), '\n'))
	return err
}

// feedbackCmd is "credgate feedback".
func feedbackCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	verb, args, fs, cf, err := verbFlags("feedback", feedbackUsage, args, stderr)
	if err != nil {
		return err
	}
	var (
		file, partner string
		limit         int
	)
	switch verb {
	case "submit":
		fs.StringVar(&file, "file", "", "the feedback as JSON (- for standard input)")
	case "show":
	case "overdue":
		fs.StringVar(&partner, "partner", "", "only this partner's checks")
		fs.IntVar(&limit, "limit", 100, "at most this many checks")
	default:
		fmt.Fprintf(stderr, "credgate feedback: unknown command %q\n\n%s", verb, feedbackUsage)
		return errUsage
	}
	rest, err := parseClientArgs(fs, args)
	if err != nil {
		return err
	}
	if (verb == "overdue") != (len(rest) == 0) || len(rest) > 1 || (verb == "submit" && file == "") {
		fmt.Fprint(stderr, feedbackUsage)
		return errUsage
	}
	api, err := cf.client()
	if err != nil {
		return err
	}
	defer func() { err = unreachable(api.BaseURL(), err) }()
	switch verb {
	case "submit":
		body, err := readLimited(file, 64<<10)
		if err != nil {
			return err
		}
		out, err := api.SubmitFeedback(ctx, rest[0], body)
		if err != nil {
			return err
		}
		return printJSON(stdout, out)
	case "show":
		out, err := api.CheckFeedback(ctx, rest[0])
		if err != nil {
			return err
		}
		return printJSON(stdout, out)
	}
	page, err := api.OverdueFeedback(ctx, partner, "", limit)
	if err != nil {
		return err
	}
	if cf.json {
		b, _ := json.Marshal(page)
		return printJSON(stdout, b)
	}
	w := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(w, "CHECK\tPARTNER\tACTION\tOUTCOME\tCHECKED\tDUE\tWORKING DAYS OVERDUE")
	for _, o := range page.Overdue {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", o.CheckID, o.Partner, o.Action, o.Outcome,
			o.CheckedAt.Format(time.RFC3339), o.DueAt.Format(time.RFC3339), o.WorkingDaysOverdue)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d checks with overdue feedback\n", len(page.Overdue))
	return nil
}

// parseWhen reads an RFC 3339 time, or a date (the start of that day in
// China Standard Time, the catalogue calendar's zone).
func parseWhen(flagName, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.FixedZone("CST", 8*3600)); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time or YYYY-MM-DD", flagName, s)
}

// statsCmd is "credgate stats".
func statsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, statsUsage) }
	var cf clientFlags
	cf.register(fs)
	var q client.StatsQuery
	var from, to string
	fs.StringVar(&from, "from", "", "start (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&to, "to", "", "end, exclusive (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&q.By, "by", "total", "total, partner, action, list or region")
	fs.StringVar(&q.Partner, "partner", "", "only this partner's checks")
	fs.BoolVar(&q.Monthly, "monthly", false, "one period per calendar month")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 || from == "" || to == "" {
		fs.Usage()
		return errUsage
	}
	if q.From, err = parseWhen("from", from); err != nil {
		return err
	}
	if q.To, err = parseWhen("to", to); err != nil {
		return err
	}
	api, err := cf.client()
	if err != nil {
		return err
	}
	defer func() { err = unreachable(api.BaseURL(), err) }()
	rep, err := api.Stats(ctx, q)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, rep.Raw)
	}
	w := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(w, "PERIOD\tKEY\tCHECKS\tFEEDBACK EXPECTED\tWITH FEEDBACK\tRATE\tAPPLIED\tNOT APPLIED\tOVERDUE")
	for _, g := range rep.Groups {
		period, key := g.Period, g.Key
		if period == "" {
			period = "-"
		}
		if key == "" {
			key = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%.4g\t%d\t%d\t%d\n", period, key, g.Checks, g.FeedbackExpected, g.WithFeedback,
			g.FeedbackRate, g.MeasuresApplied, g.MeasuresNotApplied, g.Overdue)
	}
	return w.Flush()
}

// reportCmd is "credgate report".
func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	if len(args) == 0 || args[0] != "monthly" {
		fmt.Fprint(stderr, reportUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("report monthly", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reportUsage) }
	var cf clientFlags
	cf.register(fs)
	var month, format, out string
	fs.StringVar(&month, "month", "", "the month, YYYY-MM")
	fs.StringVar(&format, "format", "csv", "csv or json")
	fs.StringVar(&out, "out", "", "write the report to this file (default standard output)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 || month == "" || (format != "csv" && format != "json") {
		fs.Usage()
		return errUsage
	}
	api, err := cf.client()
	if err != nil {
		return err
	}
	defer func() { err = unreachable(api.BaseURL(), err) }()
	b, err := api.MonthlyReport(ctx, month, format)
	if err != nil {
		return err
	}
	if out != "" {
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote the %s report of %s to %s\n", format, month, out)
		return nil
	}
	if format == "json" {
		return printJSON(stdout, b)
	}
	_, err = stdout.Write(b)
	return err
}

// coverageCmd is "credgate coverage".
func coverageCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("coverage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, coverageUsage) }
	var cf clientFlags
	cf.register(fs)
	var window int
	var partner string
	fs.IntVar(&window, "window-days", 0, "days before an approval a check counts (default the server's, 30)")
	fs.StringVar(&partner, "partner", "", "administrators and auditors: only this partner's checks count")
	rest, err := parseClientArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return errUsage
	}
	var file io.Reader = os.Stdin
	if rest[0] != "-" {
		f, err := os.Open(rest[0])
		if err != nil {
			return err
		}
		defer f.Close()
		file = f
	}
	api, err := cf.client()
	if err != nil {
		return err
	}
	defer func() { err = unreachable(api.BaseURL(), err) }()
	rep, err := api.Coverage(ctx, file, window, partner)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, rep.Raw)
	}
	fmt.Fprintf(stdout, "%d approvals: %d checked (%.2f%%), %d without a check, %d unexplained after prohibit/restrict, %d unreadable\n",
		rep.Rows, rep.Checked, rep.CoverageRate*100, rep.NoCheck, rep.Unexplained, rep.Invalid)
	w := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(w, "LINE\tFINDING\tACTION\tCHECK\tOUTCOME\tFEEDBACK\tDETAIL")
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Line, f.Finding, dash(f.Action), dash(f.CheckID), dash(f.Outcome),
			dash(f.Decision), dash(f.Detail))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if rep.FindingsTruncated {
		fmt.Fprintln(stdout, "(the first 10000 findings are listed; the figures count every row)")
	}
	fmt.Fprintf(stdout, "file sha256 %s, recorded as evidence record %s\n", rep.FileSHA256, rep.RecordID)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
