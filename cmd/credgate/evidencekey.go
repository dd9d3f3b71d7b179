package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/credgate/credgate/evidence"
)

// evidenceConfig says how the evidence log is checkpointed.
type evidenceConfig struct {
	key      string
	origin   string
	interval time.Duration
}

func (c *evidenceConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.key, "evidence-key", os.Getenv("CREDGATE_EVIDENCE_KEY"),
		"note signer key (PRIVATE+KEY+…) signing evidence checkpoints, or a file holding it; every replica needs the same one "+
			"(env CREDGATE_EVIDENCE_KEY; default: generated into the data dir)")
	fs.StringVar(&c.origin, "evidence-origin", envOr("CREDGATE_EVIDENCE_ORIGIN", "credgate.local/evidence"),
		"origin line of the evidence log's checkpoints: a name unique to this deployment (env CREDGATE_EVIDENCE_ORIGIN)")
	fs.DurationVar(&c.interval, "checkpoint-interval", time.Second, "how often a checkpoint is signed while the evidence log grows")
}

const evidenceKeyFile = "evidence-signing.key"

// signer returns the checkpoint signer from the flag/environment (a key,
// or a file holding one), or from the data dir, generating it there (0600)
// on first start. The key itself is never logged.
func (c *evidenceConfig) signer(dataDir string, logger *slog.Logger) (*evidence.Signer, error) {
	key := strings.TrimSpace(c.key)
	switch {
	case strings.HasPrefix(key, "PRIVATE+KEY+"):
	case key != "":
		b, err := os.ReadFile(key)
		if err != nil {
			return nil, fmt.Errorf("evidence key file: %w", err)
		}
		key = strings.TrimSpace(string(b))
	default:
		path := filepath.Join(dataDir, evidenceKeyFile)
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			key = strings.TrimSpace(string(b))
		case errors.Is(err, os.ErrNotExist):
			if key, err = evidence.GenerateSignerKey(keyName(c.origin)); err != nil {
				return nil, err
			}
			if err := writeSecretFile(path, []byte(key+"\n")); err != nil {
				return nil, fmt.Errorf("write evidence key: %w", err)
			}
			logger.Info("generated the evidence checkpoint signing key", "file", path)
		default:
			return nil, fmt.Errorf("evidence key: %w", err)
		}
	}
	s, err := evidence.NewSigner(c.origin, key)
	if err != nil {
		return nil, err
	}
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
