package dht

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha1"
	"errors"
	"fmt"
	"strconv"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/krpc"
)

// BEP 44 limits.
const (
	// MaxValueSize is the largest bencoded value a BEP 44 item may hold.
	MaxValueSize = 1000
	// MaxSaltSize is the longest salt of a mutable item.
	MaxSaltSize = 64
)

// BEP 44 errors, as the KRPC errors a storing node sends for them (match with errors.Is).
var (
	ErrValueTooBig      = &krpc.Error{Code: krpc.ErrorCodeValueTooBig, Msg: "message (v field) too big"}
	ErrInvalidSignature = &krpc.Error{Code: krpc.ErrorCodeInvalidSig, Msg: "invalid signature"}
	ErrSaltTooBig       = &krpc.Error{Code: krpc.ErrorCodeSaltTooBig, Msg: "salt (salt field) too big"}
	ErrCASMismatch      = &krpc.Error{Code: krpc.ErrorCodeCASMismatch, Msg: "the CAS hash mismatched, re-read value and try again"}
	ErrSeqTooLow        = &krpc.Error{Code: krpc.ErrorCodeSeqTooLow, Msg: "sequence number less than current"}
	// ErrSourceQuota refuses a put of a new item from a source that holds
	// ItemStoreConfig.MaxPerSource items already; it is sent as a server error (202).
	ErrSourceQuota = &krpc.Error{Code: krpc.ErrorCodeServer, Msg: "too many items from your address"}
	// ErrNegativeSeq refuses a mutable item with a negative sequence number, as BEP 44
	// allows; it is sent as a protocol error (203).
	ErrNegativeSeq = &krpc.Error{Code: krpc.ErrorCodeProtocol, Msg: "negative sequence number"}
)

// Item is a BEP 44 item: an immutable one (just V, stored under its SHA-1) or a mutable
// one (V signed with the ed25519 key K, under the SHA-1 of K and Salt, versioned by Seq).
type Item struct {
	// V is the value, bencoded: what is hashed and signed, byte for byte.
	V bencode.Bytes
	// Mutable marks a mutable item; the fields below are only meaningful for one.
	Mutable bool
	// K is the ed25519 public key.
	K [ed25519.PublicKeySize]byte
	// Salt, at most 64 bytes, lets one key sign several items.
	Salt []byte
	// Seq is the sequence number; a newer version has a higher one.
	Seq int64
	// Sig is the ed25519 signature of the salt, Seq and V (see SignatureBuffer).
	Sig [ed25519.SignatureSize]byte
}

// encodeValue bencodes v, which may already be bencoded (bencode.Bytes).
func encodeValue(v any) (bencode.Bytes, error) {
	if raw, ok := v.(bencode.Bytes); ok {
		if end, err := krpc.CheckValue(raw); err != nil || end != len(raw) {
			return nil, fmt.Errorf("dht: value is not one bencoded value")
		}
		return bytes.Clone(raw), nil
	}
	b, err := bencode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("dht: bencoding the value: %w", err)
	}
	return b, nil
}

// NewImmutableItem returns the immutable item holding v (any value anacrolix's bencode
// encodes, or bencode.Bytes holding one bencoded value).
func NewImmutableItem(v any) (*Item, error) {
	b, err := encodeValue(v)
	if err != nil {
		return nil, err
	}
	it := &Item{V: b}
	return it, it.check()
}

// NewMutableItem returns the mutable item holding v under key's public key and salt,
// version seq, signed with key.
func NewMutableItem(key ed25519.PrivateKey, salt []byte, seq int64, v any) (*Item, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("dht: ed25519 private key of %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	b, err := encodeValue(v)
	if err != nil {
		return nil, err
	}
	it := &Item{V: b, Mutable: true, Salt: bytes.Clone(salt), Seq: seq}
	copy(it.K[:], key.Public().(ed25519.PublicKey))
	copy(it.Sig[:], ed25519.Sign(key, it.SignatureBuffer()))
	return it, it.check()
}

// ImmutableTarget returns the target of an immutable item with the bencoded value v.
func ImmutableTarget(v bencode.Bytes) ID { return sha1.Sum(v) }

// MutableTarget returns the target of the mutable items of public key k and salt.
func MutableTarget(k [ed25519.PublicKeySize]byte, salt []byte) ID {
	h := sha1.New()
	h.Write(k[:])
	h.Write(salt)
	var id ID
	h.Sum(id[:0])
	return id
}

// Target returns the ID the item is stored under.
func (it *Item) Target() ID {
	if it.Mutable {
		return MutableTarget(it.K, it.Salt)
	}
	return ImmutableTarget(it.V)
}

// SignatureBuffer returns what a mutable item's signature covers:
// ["4:salt" len ":" salt] "3:seqi" seq "e1:v" V.
func (it *Item) SignatureBuffer() []byte {
	b := make([]byte, 0, 32+len(it.Salt)+len(it.V))
	if len(it.Salt) > 0 {
		b = append(b, "4:salt"...)
		b = strconv.AppendInt(b, int64(len(it.Salt)), 10)
		b = append(b, ':')
		b = append(b, it.Salt...)
	}
	b = append(b, "3:seqi"...)
	b = strconv.AppendInt(b, it.Seq, 10)
	b = append(b, "e1:v"...)
	return append(b, it.V...)
}

// check enforces the size limits; for a mutable item also the signature.
func (it *Item) check() error {
	if len(it.V) == 0 {
		return errors.New("dht: item without a value")
	}
	if len(it.V) > MaxValueSize {
		return ErrValueTooBig
	}
	if !it.Mutable {
		return nil
	}
	if len(it.Salt) > MaxSaltSize {
		return ErrSaltTooBig
	}
	if it.Seq < 0 {
		return ErrNegativeSeq
	}
	if !ed25519.Verify(it.K[:], it.SignatureBuffer(), it.Sig[:]) {
		return ErrInvalidSignature
	}
	return nil
}

// Verify checks the item's size limits and, for a mutable item, its sequence number and
// signature. The errors are the BEP 44 KRPC errors (ErrValueTooBig, ErrSaltTooBig,
// ErrInvalidSignature) and ErrNegativeSeq.
func (it *Item) Verify() error { return it.check() }

// Value decodes V into dst with anacrolix's bencode.
func (it *Item) Value(dst any) error { return bencode.Unmarshal(it.V, dst) }

// clone returns a deep copy.
func (it *Item) clone() *Item {
	c := *it
	c.V = bytes.Clone(it.V)
	c.Salt = bytes.Clone(it.Salt)
	return &c
}

func (it *Item) String() string {
	if it.Mutable {
		return fmt.Sprintf("mutable item %v seq=%d (%d bytes)", it.Target(), it.Seq, len(it.V))
	}
	return fmt.Sprintf("immutable item %v (%d bytes)", it.Target(), len(it.V))
}
