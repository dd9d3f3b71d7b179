package storeutil

import (
	"fmt"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// SourcePlan is what applying a source snapshot changes, computed the same
// way by every adapter from the snapshot and the items the source holds.
type SourcePlan struct {
	// Add are the items the source does not hold yet.
	Add []service.SourceEntry
	// DropItems are held items the snapshot no longer has; DropEntries
	// their entries, to be revoked.
	DropItems, DropEntries []string
	Kept                   int
}

// AddEntries are the entries of the items to add.
func (p SourcePlan) AddEntries() []policy.Entry {
	out := make([]policy.Entry, len(p.Add))
	for i, it := range p.Add {
		out[i] = it.Entry
	}
	return out
}

// PlanSourceApply compares a snapshot with the items held (item id →
// entry id).
func PlanSourceApply(a service.SourceApply, held map[string]string) SourcePlan {
	var p SourcePlan
	want := make(map[string]bool, len(a.Items))
	for _, it := range a.Items {
		want[it.ItemID] = true
		if _, ok := held[it.ItemID]; ok {
			p.Kept++
			continue
		}
		p.Add = append(p.Add, it)
	}
	for item, entry := range held {
		if !want[item] {
			p.DropItems = append(p.DropItems, item)
			p.DropEntries = append(p.DropEntries, entry)
		}
	}
	return p
}

// RenameTaken gives the items to add whose entry id is in taken (an item
// that left the source, its entry revoked and kept, and came back) a new
// id derived from the revision; exists checks a candidate.
func RenameTaken(add []service.SourceEntry, taken []string, revision string, exists func(id string) (bool, error)) error {
	if len(taken) == 0 {
		return nil
	}
	isTaken := make(map[string]bool, len(taken))
	for _, id := range taken {
		isTaken[id] = true
	}
	for i := range add {
		if !isTaken[add[i].Entry.ID] {
			continue
		}
		base := add[i].Entry.ID + "_" + revision[:min(8, len(revision))]
		for n := 0; ; n++ {
			id := base
			if n > 0 {
				id = fmt.Sprintf("%s_%d", base, n)
			}
			ok, err := exists(id)
			if err != nil {
				return err
			}
			if !ok {
				add[i].Entry.ID = id
				break
			}
			if n == 100 {
				return fmt.Errorf("no free entry id for item %s", add[i].ItemID)
			}
		}
	}
	return nil
}

// Affected lists the subjects whose answers an entry can alter: its
// subject and its responsible persons.
func Affected(e policy.Entry) []string {
	out := []string{e.Subject.Value}
	for _, p := range e.ResponsiblePersons {
		out = append(out, p.ID)
	}
	return out
}
