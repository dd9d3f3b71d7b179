package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// A checkpoint is the C2SP signed-note checkpoint (c2sp.org/tlog-checkpoint):
//
//	<origin>
//	<tree size, decimal>
//	<root hash, base64>
//
//	— <key name> <base64 signature>
//
// signed with Ed25519 through golang.org/x/mod/sumdb/note, so that the
// Go checksum database's and transparency-dev's tools read it too. The
// three-line body is written and parsed here rather than with
// transparency-dev/formats/log, which would add a post-quantum signature
// library to the build for three lines of text.

// Errors of checkpoints.
var (
	// ErrCheckpointFormat: the text is not a checkpoint note.
	ErrCheckpointFormat = errors.New("malformed checkpoint")
	// ErrCheckpointSignature: the note is not signed by a trusted key, or
	// its signature does not verify.
	ErrCheckpointSignature = errors.New("checkpoint signature does not verify")
	// ErrNoCheckpoint: no checkpoint has been signed yet.
	ErrNoCheckpoint = errors.New("no checkpoint yet")
	// ErrInvalidKey: a signer or verifier key is malformed.
	ErrInvalidKey = errors.New("invalid evidence key")
)

// MaxNoteSize bounds a checkpoint note read from outside.
const MaxNoteSize = 16 << 10

// Checkpoint is the signed statement "the log named Origin had Size records
// and root hash Root".
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   [HashSize]byte
}

// Marshal is the checkpoint's note text.
func (c Checkpoint) Marshal() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseCheckpoint parses a checkpoint's note text (the part before the
// signatures). Extension lines after the root are allowed and ignored, as
// the C2SP format says.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	if len(text) > MaxNoteSize {
		return Checkpoint{}, fmt.Errorf("%w: longer than %d bytes", ErrCheckpointFormat, MaxNoteSize)
	}
	lines := strings.SplitN(string(text), "\n", 4)
	if len(lines) < 4 {
		return Checkpoint{}, fmt.Errorf("%w: fewer than three lines", ErrCheckpointFormat)
	}
	var c Checkpoint
	c.Origin = lines[0]
	if err := ValidOrigin(c.Origin); err != nil {
		return Checkpoint{}, err
	}
	if lines[1] == "" || (len(lines[1]) > 1 && lines[1][0] == '0') {
		return Checkpoint{}, fmt.Errorf("%w: tree size %q", ErrCheckpointFormat, lines[1])
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: tree size %q", ErrCheckpointFormat, lines[1])
	}
	c.Size = size
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q is not %d base64 bytes", ErrCheckpointFormat, lines[2], HashSize)
	}
	copy(c.Root[:], root)
	return c, nil
}

// ValidOrigin checks an origin line: printable, no spaces at the ends, at
// most 256 bytes.
func ValidOrigin(origin string) error {
	if origin == "" || len(origin) > 256 || !utf8.ValidString(origin) || strings.TrimSpace(origin) != origin {
		return fmt.Errorf("%w: origin %q", ErrCheckpointFormat, origin)
	}
	for _, r := range origin {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: origin has a non-printing character", ErrCheckpointFormat)
		}
	}
	return nil
}

// SignedCheckpoint is a checkpoint with its signed note.
type SignedCheckpoint struct {
	Checkpoint
	// Note is the whole signed note: text, blank line, signature lines.
	Note []byte
}

// OpenCheckpoint verifies a signed note against the trusted verifiers and
// parses its checkpoint. origin, when not empty, must match.
func OpenCheckpoint(msg []byte, verifiers note.Verifiers, origin string) (SignedCheckpoint, error) {
	if len(msg) > MaxNoteSize {
		return SignedCheckpoint{}, fmt.Errorf("%w: longer than %d bytes", ErrCheckpointFormat, MaxNoteSize)
	}
	n, err := note.Open(msg, verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			names := make([]string, 0, len(unverified.Note.UnverifiedSigs))
			for _, s := range unverified.Note.UnverifiedSigs {
				names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return SignedCheckpoint{}, fmt.Errorf("%w: signed only by keys not trusted here (%s)", ErrCheckpointSignature, strings.Join(names, ", "))
		case errors.As(err, &invalid):
			return SignedCheckpoint{}, fmt.Errorf("%w: the signature of %s+%08x is wrong: the checkpoint text was altered or forged",
				ErrCheckpointSignature, invalid.Name, invalid.Hash)
		}
		return SignedCheckpoint{}, fmt.Errorf("%w: %w", ErrCheckpointFormat, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return SignedCheckpoint{}, err
	}
	if origin != "" && c.Origin != origin {
		return SignedCheckpoint{}, fmt.Errorf("%w: origin %q, expected %q", ErrCheckpointFormat, c.Origin, origin)
	}
	return SignedCheckpoint{Checkpoint: c, Note: bytes.Clone(msg)}, nil
}

// Verifiers parses verifier keys (name+hash+base64 key, as GET
// /v1/evidence/keys serves them) into a set that OpenCheckpoint trusts.
func Verifiers(keys ...string) (note.Verifiers, error) {
	vs := make([]note.Verifier, 0, len(keys))
	for _, k := range keys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("%w: verifier key %q: %w", ErrInvalidKey, truncate(k, 80), err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// Signer signs checkpoints for one origin with an Ed25519 note key.
type Signer struct {
	origin   string
	signer   note.Signer
	verifier string
}

// NewSigner returns a signer for origin from a note signer key
// ("PRIVATE+KEY+name+hash+base64").
func NewSigner(origin, signerKey string) (*Signer, error) {
	if err := ValidOrigin(origin); err != nil {
		return nil, err
	}
	signerKey = strings.TrimSpace(signerKey)
	s, err := note.NewSigner(signerKey)
	if err != nil {
		// The key is secret: never echo it.
		return nil, fmt.Errorf("%w: not a note signer key (PRIVATE+KEY+name+hash+key): %w", ErrInvalidKey, err)
	}
	vkey, err := verifierKeyOf(signerKey)
	if err != nil {
		return nil, err
	}
	return &Signer{origin: origin, signer: s, verifier: vkey}, nil
}

// GenerateSignerKey makes a new Ed25519 note signer key named name.
func GenerateSignerKey(name string) (string, error) {
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return skey, nil
}

// verifierKeyOf derives the verifier key of an Ed25519 note signer key.
func verifierKeyOf(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return "", fmt.Errorf("%w: signer key has %d fields", ErrInvalidKey, len(parts))
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", fmt.Errorf("%w: signer key is not an Ed25519 key", ErrInvalidKey)
	}
	priv := ed25519.NewKeyFromSeed(raw[1:])
	vkey, err := note.NewEd25519VerifierKey(parts[2], priv.Public().(ed25519.PublicKey))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return vkey, nil
}

// Origin is the origin line of every checkpoint this signer signs.
func (s *Signer) Origin() string { return s.origin }

// VerifierKey is the public key that verifies this signer's checkpoints.
func (s *Signer) VerifierKey() string { return s.verifier }

// Sign signs the checkpoint of the tree (size, root).
func (s *Signer) Sign(size uint64, root [HashSize]byte) (SignedCheckpoint, error) {
	c := Checkpoint{Origin: s.origin, Size: size, Root: root}
	msg, err := note.Sign(&note.Note{Text: string(c.Marshal())}, s.signer)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
