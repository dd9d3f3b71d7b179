package gateway

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// evidenceAPI serves the evidence log to auditors: the keys and signed
// checkpoints anyone may fetch and keep, consistency proofs between them,
// and receipts and leaves for authenticated callers.
type evidenceAPI struct {
	log      *evidence.Log
	receipts *service.Receipts

	// spool tells records waiting in this replica's evidence spool
	// (WithSpool) from records that do not exist; made at its first use,
	// since WithSpool may come after WithEvidence.
	spoolOnce sync.Once
	spool     *service.SpoolLookup
}

// WithEvidence mounts /v1/evidence/*: keys, checkpoint, consistency and
// the log's hash tiles (tlog.go) for anyone (they hold hashes and public
// keys, and a witness must be able to fetch them without credgate's
// leave), receipts for callers, and the leaves and entry bundles (which
// name each record's partner and time) for administrators and auditors.
func WithEvidence(log *evidence.Log, receipts *service.Receipts) Option {
	return func(s *Server) { s.evidence = &evidenceAPI{log: log, receipts: receipts} }
}

// mountEvidence mounts the routes whether or not WithEvidence was given, so
// that the route table is the same in every configuration; without it they
// answer 503 evidence_unavailable.
func (s *Server) mountEvidence(v1, authed *gin.RouterGroup) {
	v1.GET("/evidence/keys", s.needEvidence, s.evidenceKeys)
	v1.GET("/evidence/checkpoint", s.needEvidence, s.evidenceCheckpoint)
	v1.GET("/evidence/consistency", s.needEvidence, s.evidenceConsistency)
	v1.GET("/evidence/tlog/checkpoint", s.needEvidence, s.tlogCheckpoint)
	v1.GET("/evidence/tlog/tile/*tile_path", s.needEvidence, s.guardEntryBundles, s.tlogTile)
	authed.GET("/evidence/receipts/:id", s.needEvidence, s.asActor, s.evidenceReceipt)
	authed.GET("/evidence/leaves", require(service.RoleAdmin, service.RoleAuditor), s.needEvidence, s.evidenceLeaves)
}

func (s *Server) needEvidence(c *gin.Context) {
	if s.evidence == nil {
		fail(c, evidence.ErrUnavailable)
		return
	}
	c.Next()
}

type evidenceKeyView struct {
	Key     string    `json:"key"`
	Name    string    `json:"name"`
	Current bool      `json:"current"`
	AddedAt time.Time `json:"added_at"`
}

func (s *Server) evidenceKeys(c *gin.Context) {
	keys, err := s.evidence.log.Keys(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]evidenceKeyView, len(keys))
	for i, k := range keys {
		out[i] = evidenceKeyView{Key: k.Key, Name: evidence.KeyName(k.Key), Current: k.Current, AddedAt: k.AddedAt}
	}
	c.JSON(http.StatusOK, gin.H{"origin": s.evidence.log.Origin(), "keys": out})
}

type checkpointView struct {
	Origin   string    `json:"origin"`
	Size     uint64    `json:"size"`
	RootHash string    `json:"root_hash"`
	SignedAt time.Time `json:"signed_at"`
	// Checkpoint is the signed note, verbatim: what an auditor keeps.
	Checkpoint string `json:"checkpoint"`
}

func (s *Server) evidenceCheckpoint(c *gin.Context) {
	cp, err := s.evidence.log.Checkpoint(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-cache")
	c.JSON(http.StatusOK, checkpointView{Origin: s.evidence.log.Origin(), Size: cp.Size,
		RootHash: base64.StdEncoding.EncodeToString(cp.Root[:]), SignedAt: cp.At, Checkpoint: string(cp.Note)})
}

// treeSizeQuery reads a required tree size from the query string.
func treeSizeQuery(c *gin.Context, name string) (uint64, bool) {
	raw := c.Query(name)
	n, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || n > 1<<62 {
		p := problem(http.StatusBadRequest, "invalid_query", "Invalid query", name+" must be a tree size (a non-negative integer)")
		p.Field = name
		fail(c, p)
		return 0, false
	}
	return n, true
}

// treeRange reads the required ?from= and ?to= tree sizes that a proof or a
// span of leaves runs between; on a bad value it answers 400 and reports false.
func treeRange(c *gin.Context) (from, to uint64, ok bool) {
	if from, ok = treeSizeQuery(c, "from"); !ok {
		return 0, 0, false
	}
	if to, ok = treeSizeQuery(c, "to"); !ok {
		return 0, 0, false
	}
	return from, to, true
}

func (s *Server) evidenceConsistency(c *gin.Context) {
	from, to, ok := treeRange(c)
	if !ok {
		return
	}
	p, err := s.evidence.log.Consistency(c.Request.Context(), from, to)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"from": from, "to": to, "proof": base64Hashes(p)})
}

func base64Hashes(p [][evidence.HashSize]byte) []string {
	out := make([]string, len(p))
	for i, h := range p {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

// evidenceReceipt serves a record's receipt: a partner's own, or any to
// administrators and auditors, whose read is recorded (receipt_read: the
// receipt carries the record's body). A record still in this replica's
// spool is 404 receipt_pending with Retry-After, not not_found.
func (s *Server) evidenceReceipt(c *gin.Context) {
	caller := callerOf(c)
	r, err := s.checker.ReadReceipt(readContext(c), s.evidence.receipts, caller, c.Param("id"))
	if err != nil {
		fail(c, s.pendingRecord(caller, c.Param("id"), err))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, r)
}

type auditRecordView struct {
	ID         string        `json:"id"`
	Kind       evidence.Kind `json:"kind"`
	Partner    string        `json:"partner"`
	At         time.Time     `json:"at"`
	RecordHash string        `json:"record_hash"`
}

type auditLeafView struct {
	Index    uint64              `json:"index"`
	TreeLeaf string              `json:"tree_leaf"`
	Record   *auditRecordView    `json:"record"`
	Body     evidence.BodyStatus `json:"body"`
	Nodes    []auditNodeView     `json:"nodes,omitempty"`
}

type auditNodeView struct {
	Level uint   `json:"level"`
	Index uint64 `json:"index"`
	Hash  string `json:"hash"`
}

func (s *Server) evidenceLeaves(c *gin.Context) {
	from, to, ok := treeRange(c)
	if !ok {
		return
	}
	leaves, err := s.evidence.log.AuditLeaves(c.Request.Context(), from, to)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]auditLeafView, len(leaves))
	for i, l := range leaves {
		out[i] = auditLeafView{Index: l.Index, TreeLeaf: hex.EncodeToString(l.TreeLeaf[:]), Body: l.Body}
		for _, n := range l.Nodes {
			out[i].Nodes = append(out[i].Nodes, auditNodeView{Level: n.ID.Level, Index: n.ID.Index, Hash: hex.EncodeToString(n.Hash[:])})
		}
		if l.Body != evidence.BodyMissing {
			out[i].Record = &auditRecordView{ID: l.Record.ID, Kind: l.Record.Kind, Partner: l.Record.Partner,
				At: l.Record.At, RecordHash: hex.EncodeToString(l.Record.Hash[:])}
		}
	}
	c.JSON(http.StatusOK, gin.H{"from": from, "to": to, "leaves": out})
}

// readContext is the request's context naming its route, which the acts
// recording staff reads name (service.WithReadRoute).
func readContext(c *gin.Context) context.Context {
	return service.WithReadRoute(c.Request.Context(), c.Request.Method+" "+c.FullPath())
}

// pendingRecord turns the not_found of a record that waits in this
// replica's evidence spool (its check was answered with a promise) into
// service.ErrReceiptPending; other errors, and records it does not hold,
// are returned as they are.
func (s *Server) pendingRecord(caller service.Caller, id string, err error) error {
	if !errors.Is(err, service.ErrNotFound) || s.evidence == nil {
		return err
	}
	s.evidence.spoolOnce.Do(func() {
		if s.status == nil {
			return
		}
		switch sl := s.status.spool.(type) {
		case *service.SpoolingLog:
			s.evidence.spool = service.NewSpoolLookup(sl)
		case interface{ SpoolingLog() *service.SpoolingLog }:
			// A reporter in front of the log (tests build the log after
			// the options) names it.
			s.evidence.spool = service.NewSpoolLookup(sl.SpoolingLog())
		}
	})
	if s.evidence.spool.Pending(caller, id) {
		return fmt.Errorf("evidence record %q: %w", id, service.ErrReceiptPending)
	}
	return err
}
