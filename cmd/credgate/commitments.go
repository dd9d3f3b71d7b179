package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/credgate/credgate/client"
)

// Credit commitments (信用承诺) from the command line, over the API.

const commitmentsUsage = `Usage: credgate commitments COMMAND [flags]

Credit commitments (信用承诺): a written promise made with a check (容缺受理: missing materials
provided by a date) or with a repair or exit application, and its fulfilment or breach. Every
commitment and change is recorded in the evidence log before it is accepted.

Commands:
  list [--partner CLIENT_ID] [--subject ID] [--state open|overdue|fulfilled|breached] [--limit N]
                 commitments, oldest first (a partner sees its own)
  add --subject ID --kind KIND --promise TEXT --due YYYY-MM-DD (--check CHECK_ID | --proceeding ID)
                 record a commitment; KIND is one of the catalogue's commitment kinds
                 (missing_materials, repair, exit); a partner's belongs to one of its checks,
                 an administrator's may name a repair or exit proceeding instead
  show ID        one commitment (with its receipt where the server keeps receipts)
  fulfil ID [--note TEXT]
                 mark it fulfilled
  breach ID [--note TEXT] [--violation FILE.json]
                 mark it breached; an administrator may record the violation it constitutes
                 (FILE is the violation as POST /v1/admin/violations takes it; "-" reads
                 standard input), where the commitment's kind names the rule set
` + clientFlagsUsage

// commitmentsCmd is "credgate commitments".
func commitmentsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	verb, args, fs, cf, err := verbFlags("commitments", commitmentsUsage, args, stderr)
	if err != nil {
		return err
	}
	var (
		q             client.CommitmentQuery
		spec          client.CommitmentSpec
		note, vioFile string
	)
	positional := 1
	switch verb {
	case "list":
		positional = 0
		fs.StringVar(&q.Partner, "partner", "", "only this partner's commitments")
		fs.StringVar(&q.Subject, "subject", "", "only this subject's commitments")
		fs.StringVar(&q.State, "state", "", "open, overdue, fulfilled or breached")
		fs.IntVar(&q.Limit, "limit", 100, "at most this many")
	case "add":
		positional = 0
		fs.StringVar(&spec.Subject, "subject", "", "the subject that promises (USCC or ID number)")
		fs.StringVar(&spec.Kind, "kind", "", "the commitment kind (missing_materials, repair, exit)")
		fs.StringVar(&spec.Promise, "promise", "", "the promise as written")
		fs.StringVar(&spec.Due, "due", "", "the date it is due, YYYY-MM-DD")
		fs.StringVar(&spec.CheckID, "check", "", "the check it belongs to")
		fs.StringVar(&spec.ProceedingID, "proceeding", "", "the repair or exit proceeding it belongs to")
	case "show":
	case "fulfil":
		fs.StringVar(&note, "note", "", "what was provided or done")
	case "breach":
		fs.StringVar(&note, "note", "", "what was not done")
		fs.StringVar(&vioFile, "violation", "", "the violation the breach constitutes, as JSON (administrators)")
	default:
		fmt.Fprintf(stderr, "credgate commitments: unknown command %q\n\n%s", verb, commitmentsUsage)
		return errUsage
	}
	rest, err := parseClientArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != positional || (verb == "add" && (spec.Subject == "" || spec.Kind == "" || spec.Promise == "" || spec.Due == "" ||
		(spec.CheckID == "") == (spec.ProceedingID == ""))) {
		fmt.Fprint(stderr, commitmentsUsage)
		return errUsage
	}
	if verb == "add" {
		if _, err := time.Parse(time.DateOnly, spec.Due); err != nil {
			return fmt.Errorf("--due %q: want YYYY-MM-DD", spec.Due)
		}
	}
	api, err := cf.client()
	if err != nil {
		return err
	}
	defer func() { err = unreachable(api.BaseURL(), err) }()
	var one client.Commitment
	switch verb {
	case "list":
		page, err := api.Commitments(ctx, q)
		if err != nil {
			return err
		}
		if cf.json {
			b, _ := json.Marshal(page)
			return printJSON(stdout, b)
		}
		w := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tPARTNER\tSUBJECT\tKIND\tDUE\tSTATE\tOVERDUE")
		for _, c := range page.Commitments {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", c.ID, c.Partner, c.Subject, c.Kind, c.Due, c.State, c.Overdue)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "listed: %d\n", len(page.Commitments))
		if page.Next != "" {
			fmt.Fprintf(stdout, "more after %s (the API's after=)\n", page.Next)
		}
		return nil
	case "add":
		one, err = api.RecordCommitment(ctx, spec)
	case "show":
		one, err = api.Commitment(ctx, rest[0])
	case "fulfil", "breach":
		change := map[string]any{}
		if note != "" {
			change["note"] = note
		}
		if vioFile != "" {
			v, err := readLimited(vioFile, 64<<10)
			if err != nil {
				return err
			}
			if !json.Valid(v) {
				return fmt.Errorf("--violation %s: not JSON", vioFile)
			}
			change["violation"] = json.RawMessage(v)
		}
		var body []byte
		if len(change) > 0 {
			body, _ = json.Marshal(change)
		}
		one, err = api.ChangeCommitment(ctx, rest[0], verb, body)
	}
	if err != nil {
		return err
	}
	if cf.json || verb == "show" {
		return printJSON(stdout, one.Raw)
	}
	fmt.Fprintf(stdout, "commitment %s: %s, due %s (%s, subject %s)\n", one.ID, one.State, one.Due, one.Kind, one.Subject)
	return nil
}
