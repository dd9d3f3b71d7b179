package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Departments' subscriptions by measure authority from the command line,
// over the API.

const authoritiesUsage = `Usage: credgate authorities COMMAND [flags]

Departments subscribe by measure authority: the partner registered for a department (实施部门)
follows the authorities it answers for, and is told by its webhook and GET /v1/events of every
change that brings a measure of theirs into or out of force, for any subject.

Commands:
  list                 the authorities of the catalogue's measures, spelled as a subscription
                       must spell them
  show CLIENT_ID       the authorities the partner follows (administrators, auditors)
  set CLIENT_ID AUTHORITY...
                       replace them (administrators); an unknown one changes nothing
  clear CLIENT_ID      end the subscription (administrators)
` + clientFlagsUsage

// authoritiesCmd is "credgate authorities".
func authoritiesCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	verb, args, fs, cf, err := verbFlags("authorities", authoritiesUsage, args, stderr)
	if err != nil {
		return err
	}
	rest, err := parseClientArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case verb == "list" && len(rest) == 0:
	case (verb == "show" || verb == "clear") && len(rest) == 1:
	case verb == "set" && len(rest) >= 2:
	default:
		fmt.Fprint(stderr, authoritiesUsage)
		return errUsage
	}
	api, err := cf.client()
	if err != nil {
		return err
	}
	defer func() { err = unreachable(api.BaseURL(), err) }()
	if verb == "list" {
		var cat struct {
			Measures []struct {
				Authority string `json:"authority"`
			} `json:"measures"`
		}
		if err := api.Do(ctx, http.MethodGet, "/v1/catalog", nil, "", &cat); err != nil {
			return err
		}
		var names []string
		for _, m := range cat.Measures {
			if m.Authority != "" && !slices.Contains(names, m.Authority) {
				names = append(names, m.Authority)
			}
		}
		slices.Sort(names)
		if cf.json {
			b, _ := json.Marshal(names)
			return printJSON(stdout, b)
		}
		fmt.Fprintln(stdout, strings.Join(names, "\n"))
		return nil
	}
	sub, err := api.Authorities(ctx, rest[0])
	switch verb {
	case "set":
		sub, err = api.SetAuthorities(ctx, rest[0], rest[1:])
	case "clear":
		sub, err = api.SetAuthorities(ctx, rest[0], nil)
	}
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(stdout, sub.Raw)
	}
	if len(sub.Authorities) == 0 {
		fmt.Fprintf(stdout, "%s follows no authority\n", sub.Partner)
		return nil
	}
	fmt.Fprintf(stdout, "%s follows:\n  %s\n", sub.Partner, strings.Join(sub.Authorities, "\n  "))
	return nil
}
