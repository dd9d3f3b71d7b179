package gateway

// ProblemFor is the problem the API answers for err, for the other
// interfaces over the same service layer (the console): a form's
// validation error there reads as the API's, with the same code, field and
// detail. A copy is returned, so callers may set Instance or RequestID.
// Errors on entries point their subject identifier at subject_id, as the
// entry endpoints do.
func ProblemFor(err error) Problem {
	return *problemFor(entryError(err))
}
