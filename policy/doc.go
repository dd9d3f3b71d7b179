// Package policy is credgate's domain: subject identifiers, lists and
// entries, the measure catalogue, lifecycle rules and the decision. It is
// pure: it imports no infrastructure, does no I/O beyond reading its
// embedded catalogue, and takes time as an argument.
package policy
