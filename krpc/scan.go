package krpc

import (
	"errors"
	"fmt"
)

// maxDepth bounds the nesting of lists and dictionaries in a message, as anacrolix's
// bencode decoder does (v1.62.0). Deeper input is rejected before it costs stack.
const maxDepth = 64

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("krpc: malformed message")

// decodeError is a decoding failure. syntax is true when the input is not valid bencode at
// all (no field of it can be trusted) and false when the bencode is valid but a known key
// has the wrong type or length.
type decodeError struct {
	off    int
	key    string
	what   string
	syntax bool
}

func (e *decodeError) Error() string {
	if e.key != "" {
		return fmt.Sprintf("krpc: malformed message: key %q at offset %d: %s", e.key, e.off, e.what)
	}
	return fmt.Sprintf("krpc: malformed message at offset %d: %s", e.off, e.what)
}

func (e *decodeError) Unwrap() error { return ErrMalformed }

func syntaxErr(off int, what string) error {
	return &decodeError{off: off, what: what, syntax: true}
}

// IsSyntaxError reports whether err is a decoding error for input that is not bencode at
// all, as opposed to valid bencode with a bad field.
func isSyntaxError(err error) bool {
	var de *decodeError
	return errors.As(err, &de) && de.syntax
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanString parses a bencoded string at b[i] and returns its contents and the index after it.
func scanString(b []byte, i int) ([]byte, int, error) {
	start := i
	if i >= len(b) || !isDigit(b[i]) {
		return nil, i, syntaxErr(i, "expected a string")
	}
	if b[i] == '0' && i+1 < len(b) && b[i+1] != ':' {
		return nil, i, syntaxErr(i, "string length with a leading zero")
	}
	n := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		if i-start >= 9 { // 9 digits already: no message is that long
			return nil, start, syntaxErr(start, "string length out of range")
		}
		n = n*10 + int(b[i]-'0')
	}
	if i >= len(b) || b[i] != ':' {
		return nil, start, syntaxErr(i, "expected ':' after a string length")
	}
	i++
	if n > len(b)-i {
		return nil, start, syntaxErr(start, fmt.Sprintf("string of %d bytes runs past the end", n))
	}
	return b[i : i+n], i + n, nil
}

// scanInt parses a bencoded integer at b[i] ('i' expected) and returns it and the index
// after it. Non-canonical forms (leading zeros, "-0", empty) are rejected.
func scanInt(b []byte, i int) (int64, int, error) {
	start := i
	if i >= len(b) || b[i] != 'i' {
		return 0, i, syntaxErr(i, "expected an integer")
	}
	i++
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	digits := i
	var v uint64
	for ; i < len(b) && isDigit(b[i]); i++ {
		if i-digits >= 19 {
			return 0, start, syntaxErr(start, "integer out of range")
		}
		v = v*10 + uint64(b[i]-'0')
	}
	switch {
	case i == digits:
		return 0, start, syntaxErr(start, "integer without digits")
	case i >= len(b) || b[i] != 'e':
		return 0, start, syntaxErr(i, "expected 'e' after an integer")
	case b[digits] == '0' && (i-digits > 1 || neg):
		return 0, start, syntaxErr(start, "non-canonical integer")
	}
	if neg {
		if v > 1<<63 {
			return 0, start, syntaxErr(start, "integer out of range")
		}
		return -int64(v), i + 1, nil
	}
	if v > 1<<63-1 {
		return 0, start, syntaxErr(start, "integer out of range")
	}
	return int64(v), i + 1, nil
}

// skipValue checks the bencoded value at b[i] and returns the index after it. depth is the
// nesting depth of the value itself (a top-level dictionary is depth 1).
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, syntaxErr(i, "unexpected end of message")
	}
	switch c := b[i]; {
	case c == 'i':
		_, next, err := scanInt(b, i)
		return next, err
	case isDigit(c):
		_, next, err := scanString(b, i)
		return next, err
	case c == 'l' || c == 'd':
		if depth > maxDepth {
			return i, syntaxErr(i, fmt.Sprintf("nesting deeper than %d", maxDepth))
		}
		i++
		for {
			if i >= len(b) {
				return i, syntaxErr(i, "unterminated list or dictionary")
			}
			if b[i] == 'e' {
				return i + 1, nil
			}
			var err error
			if c == 'd' {
				if _, i, err = scanString(b, i); err != nil {
					return i, err
				}
			}
			if i, err = skipValue(b, i, depth+1); err != nil {
				return i, err
			}
		}
	default:
		return i, syntaxErr(i, fmt.Sprintf("unexpected byte %q", c))
	}
}

// CheckValue checks that b starts with one bencoded value (nesting at most 64 deep) and
// returns the index just after it.
func CheckValue(b []byte) (int, error) { return skipValue(b, 0, 1) }
