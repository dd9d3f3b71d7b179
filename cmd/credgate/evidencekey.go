package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/config"
)

const evidenceKeyFile = "evidence-signing.key"

// configuredSigner is the checkpoint signer of evidence.key (a key, or a
// file holding one), nil when none is configured. The key itself is never
// logged or repeated.
func configuredSigner(c config.Evidence) (*evidence.Signer, error) {
	key := strings.TrimSpace(c.Key)
	if key == "" {
		return nil, nil
	}
	if !strings.HasPrefix(key, "PRIVATE+KEY+") {
		if strings.Contains(strings.ToUpper(key), "PRIVATE+KEY") {
			// A key in quotes, or after other text: opening it as a file
			// would print it in the error.
			return nil, errors.New("not a note signer key: it holds PRIVATE+KEY but does not begin with PRIVATE+KEY+ (quotes or other text around the key?); nor is it a file's path (its value is not repeated)")
		}
		b, err := readBounded(key, 64<<10)
		if err != nil {
			if !looksLikePath(key) {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err // without the value
				}
				return nil, fmt.Errorf("neither a note signer key (PRIVATE+KEY+…) nor the path of a readable file (its value, which may be a secret, is not repeated): %w", err)
			}
			return nil, fmt.Errorf("evidence key file: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	return evidence.NewSigner(c.Origin, key)
}

// looksLikePath reports whether evidence.key's value, which is not a
// signer key, may be named in an error as a file's path: printable, of a
// path's length, without the '+' of a note key, the '=' of base64 or
// quotes, and not a token seed (the other secret an operator may have put
// there by mistake).
func looksLikePath(v string) bool {
	if len(v) > 4096 || strings.ContainsAny(v, "+=\"'`") {
		return false
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	_, err := access.DecodeSeed(v)
	return err != nil
}

// dataDirSigner is the checkpoint signer whose key is in the data dir.
// When there is none it is generated there (0600) if generate is set —
// made and checked in memory, then written — and nil otherwise. The key
// itself is never logged.
func dataDirSigner(origin, dataDir string, generate bool, logger *slog.Logger) (*evidence.Signer, error) {
	path := filepath.Join(dataDir, evidenceKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		s, err := evidence.NewSigner(origin, strings.TrimSpace(string(b)))
		if err != nil {
			// Removing the key is not suggested: auditors pin its verifier key.
			return nil, fmt.Errorf("%s: %w; restore it from a backup, or set evidence.key (CREDGATE_EVIDENCE_KEY)", path, err)
		}
		return s, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("evidence key: %w", err)
	case !generate:
		return nil, nil
	}
	key, err := evidence.GenerateSignerKey(keyName(origin))
	if err != nil {
		return nil, err
	}
	s, err := evidence.NewSigner(origin, key)
	if err != nil {
		return nil, err
	}
	if err := writeSecretFile(path, []byte(key+"\n")); err != nil {
		return nil, fmt.Errorf("write evidence key: %w", err)
	}
	logger.Info("generated the evidence checkpoint signing key", "file", path)
	return s, nil
}

// checkLogKey refuses a log whose latest checkpoint neither the replica's
// signer (nil: none configured nor in the data dir) nor its previous keys
// verify, saying which key signed it and where that key is to be found.
func checkLogKey(ctx context.Context, st evidence.CheckpointReader, signer *evidence.Signer, cfg *config.Config) error {
	keys := slices.Clone(cfg.Evidence.PreviousKeys)
	if signer != nil {
		keys = append(keys, signer.VerifierKey())
	}
	vs, err := evidence.Verifiers(keys...)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Describe("evidence.previous_keys"), err)
	}
	prev := cfg.Evidence.PreviousOrigin
	if prev != "" && prev == cfg.Evidence.Origin {
		return fmt.Errorf("%s is %s's value %q: a log restarted after a restore needs a new origin", cfg.Describe("evidence.previous_origin"),
			cfg.Describe("evidence.origin"), prev)
	}
	err = evidence.CheckLogKey(ctx, st, cfg.Evidence.Origin, vs)
	var ke *evidence.LogKeyError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ke):
		return fmt.Errorf("evidence log: %w", err)
	case ke.Origin != "" && ke.Origin == prev:
		// The old log's checkpoint, verified by a key given here: the
		// database was deliberately started as a new log over it. The
		// log serves only its own (evidence.WithPreviousOrigin).
		return nil
	case ke.Origin != "" && prev != "":
		return fmt.Errorf("%w: %s is %q and %s %q; the log's latest checkpoint is of neither",
			err, cfg.Describe("evidence.origin"), cfg.Evidence.Origin, cfg.Describe("evidence.previous_origin"), prev)
	case ke.Origin != "":
		return fmt.Errorf("%w: %s is %q; set --evidence-origin / CREDGATE_EVIDENCE_ORIGIN to %q, as the replicas that signed it have "+
			"(or, for a restored database deliberately started as a new log, --evidence-previous-origin / CREDGATE_EVIDENCE_PREVIOUS_ORIGIN to it "+
			"and its verifier key in --evidence-previous-keys)",
			err, cfg.Describe("evidence.origin"), cfg.Evidence.Origin, ke.Origin)
	}
	has := "has no evidence key: none is configured, and " + filepath.Join(cfg.Store.DataDir, evidenceKeyFile) + " does not exist"
	if signer != nil {
		has = "has key " + signerName(signer.VerifierKey())
	}
	return fmt.Errorf("%w, which this replica does not have (it %s): copy %s from the first replica's data dir, or set --evidence-key / CREDGATE_EVIDENCE_KEY to it; "+
		"after a rotation, give the old verifier key (GET /v1/evidence/keys) in --evidence-previous-keys / CREDGATE_EVIDENCE_PREVIOUS_KEYS",
		err, has, evidenceKeyFile)
}

// signerName is a verifier key's "name+hash", as a note's signature line
// names it; the key itself is public but long.
func signerName(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) < 2 {
		return vkey
	}
	return parts[0] + "+" + parts[1]
}

// keyName makes a note key name (no spaces, no '+') from the origin.
func keyName(origin string) string {
	name := strings.Map(func(r rune) rune {
		if r == '+' || unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, origin)
	if name == "" {
		return "credgate"
	}
	return name
}

// startEvidenceLog integrates any records appended before the tree existed
// (an upgrade), registers the key, signs a first checkpoint, and starts
// the checkpointer; stop ends it and waits for it.
func startEvidenceLog(ctx context.Context, st evidence.Sink, log *evidence.Log, logger *slog.Logger) (stop func(), err error) {
	if _, err := st.AppendBatch(ctx, nil); err != nil {
		return nil, fmt.Errorf("evidence tree: %w", err)
	}
	if err := log.Start(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		log.Run(ctx)
	}()
	// The verifier key is public: auditors pin it.
	logger.Info("evidence log checkpointing", "origin", log.Origin(), "verifier_key", log.VerifierKey())
	return func() { cancel(); <-done }, nil
}
