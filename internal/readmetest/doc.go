// Package readmetest runs README.md as written: its shell blocks, in
// order, in one bash session, against a credgate server it starts from the
// binary the README builds. It holds only that test; the README is
// credgate's first integration test, so a step that stops working, a
// variable no earlier step sets or an output that no longer holds what the
// README says fails the build.
package readmetest
