package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unicode"

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
		b, err := readBounded(key, 64<<10)
		if err != nil {
			return nil, fmt.Errorf("evidence key file: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	return evidence.NewSigner(c.Origin, key)
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
