package main

import (
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// followUp wires what follows a check: feedback and commitments append to
// the checks' log; statistics and coverage answers are recorded as acts.
// Their reads are not bounded by store.timeout: a month's statistics or a
// file of a million approvals may take longer than a request's read.
// The feedback use case is returned too, for the console's page of
// overdue feedback.
func followUp(cat *policy.Catalog, checker *service.Checker, log service.EvidenceLog, st service.FollowUpStore,
	audit *service.Audit, lifecycle *service.Lifecycle) (gateway.Option, *service.Feedback) {
	feedback := service.NewFeedback(checker, log, st)
	return gateway.WithFollowUp(feedback, service.NewStats(cat, st, service.WithStatsAudit(audit)),
		service.NewCoverage(cat, st, audit), service.NewCommitments(feedback, lifecycle)), feedback
}
