package client_test

import (
	"context"
	"fmt"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
)

// The README's example, run against an in-process stand-in for credgate
// (exampleServer): a real integration names its server and reads the
// credential from its configuration, e.g.
// client.New("https://credgate.example", client.WithClientSecret(os.Getenv("CREDGATE_CLIENT_ID"), os.Getenv("CREDGATE_CLIENT_SECRET"))).
func Example() {
	srv, pinnedKey := exampleServer() // pinnedKey: from GET /v1/evidence/keys, pinned once
	defer srv.Close()
	ctx := context.Background()
	run := func() error {
		c, err := client.New(srv.URL, client.WithClientSecret("cg_example", "example-secret"))
		if err != nil {
			return err
		}
		ans, err := c.Check(ctx, client.CheckRequest{
			Subject: client.Subject{ID: "91350100M000100Y43"},
			Action:  "government_procurement",
		})
		switch {
		case client.IsCode(err, "invalid_subject_id"):
			return fmt.Errorf("ask the applicant for the code again: %w", err)
		case err != nil:
			return err
		}
		// keep ans.Raw with the file: it is the recorded answer
		switch ans.Outcome {
		case client.OutcomeUnverifiable:
			// Not a clearance: the list data was too old to answer on
			// (ans.Unverifiable says why). Decide by hand, or ask again.
			return fmt.Errorf("check %s unverifiable: %s", ans.CheckID, ans.Unverifiable.Detail)
		case client.OutcomeClear, client.OutcomeIncentive:
			fmt.Println("proceed:", ans.Outcome)
		default: // ans.Measures says what must be done, and on what legal basis
			fmt.Println("apply the measures:", ans.Outcome)
		}

		vs, err := audit.Verifiers([]string{pinnedKey})
		if err != nil {
			return err
		}
		if ans.Receipt.Spooled() {
			// The log's database could not commit the record in time; the
			// replica promised it instead. Keep the promise: the receipt
			// is served (until then 404 receipt_pending) once the replica has
			// integrated its spool.
			_, err := evidence.VerifyPromise(*ans.Receipt.Promise, vs)
			return err
		}
		// The receipt verifies offline against the pinned key, now or in ten years.
		receipt, err := c.Receipt(ctx, ans.CheckID)
		if err != nil {
			return err
		}
		v, err := audit.VerifyReceipt(receipt, vs, "")
		if err != nil {
			return err
		}
		fmt.Println("receipt verifies for this check:", v.Record.ID == ans.CheckID)
		return nil
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// proceed: clear
	// receipt verifies for this check: true
}
