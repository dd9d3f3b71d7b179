// Package console is credgate's web console for the people who run it: a
// credit office's administrators and the auditors who review them. It is
// a second interface beside gateway, over the same service layer: every
// screen reads and every form acts through the service types the JSON API
// uses (service.Checker, Entries, Lifecycle, Partners, Receipts and the
// evidence log), so an act from the console is recorded in the evidence
// log exactly as the same act over the API.
//
// Pages are rendered on the server from embedded templates and work
// without JavaScript; the little embedded script adds validation as you
// type, an upload progress bar, a copy button and the in-browser receipt
// verifier. Nothing is fetched from elsewhere at run time: the offices run
// on closed networks.
//
// A session is made from an administrator's or auditor's client
// credential (a partner's is refused) and kept in this process: cookies
// are HttpOnly, SameSite=Strict and Secure over TLS (or behind a trusted
// proxy that says X-Forwarded-Proto: https); sessions end after
// an idle and an absolute timeout, on sign-out, and as soon as the
// credential behind them is revoked or rotated away. Every form carries a
// per-session CSRF token. Roles are enforced here, on the server: an
// auditor sees the screens but no form that changes anything.
//
// A subject's ID number (personal information under the PIPL) is sent in
// a form's POST body, never in an address: the subject lookup, the entries
// filter and an entry's way to its subject are posted forms (with the CSRF
// token), answered on the POST's own page, since addresses end up in
// proxies' logs, browsers' histories and bookmarks.
package console
