package client_test

import (
	"context"
	"fmt"
	"os"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/client/audit"
)

// The README's example, kept compiling here.
func Example() {
	ctx := context.Background()
	pinnedKey := os.Getenv("CREDGATE_EVIDENCE_VKEY")
	run := func() error {
		c, err := client.New("https://credgate.example",
			client.WithClientSecret(os.Getenv("CREDGATE_CLIENT_ID"), os.Getenv("CREDGATE_CLIENT_SECRET")))
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
		fmt.Println(ans.CheckID, ans.Outcome) // keep ans.Raw with the file: it is the recorded answer

		// The receipt verifies offline against the pinned key, now or in ten years.
		receipt, err := c.Receipt(ctx, ans.CheckID)
		if err != nil {
			return err
		}
		vs, _ := audit.Verifiers([]string{pinnedKey}) // from GET /v1/evidence/keys, pinned once
		if _, err := audit.VerifyReceipt(receipt, vs, ""); err != nil {
			return err
		}
		return nil
	}
	_ = run
}
