package gitrepo

import "errors"

// maxScratch bounds the delta buffer a reader keeps between objects.
const maxScratch = 1 << 20

var errBadDelta = errors.New("corrupt delta")

// applyDelta rebuilds an object from its base and a git delta: the base's
// and the result's sizes, then instructions that copy a span of the base
// or insert the bytes that follow. The result is allocated once, at the
// size the delta states.
func applyDelta(base, delta []byte) ([]byte, error) {
	varint := func() (int64, bool) {
		var n int64
		for shift := uint(0); len(delta) > 0 && shift < 63; shift += 7 {
			c := delta[0]
			delta = delta[1:]
			n |= int64(c&0x7f) << shift
			if c&0x80 == 0 {
				return n, true
			}
		}
		return 0, false
	}
	srcSize, ok1 := varint()
	dstSize, ok2 := varint()
	if !ok1 || !ok2 || srcSize != int64(len(base)) || dstSize > maxObjectSize {
		return nil, errBadDelta
	}
	out := make([]byte, 0, dstSize)
	for len(delta) > 0 {
		cmd := delta[0]
		delta = delta[1:]
		switch {
		case cmd&0x80 != 0: // copy from the base: offset in bits 0-3, size in bits 4-6
			var off, n int64
			for i := range 7 {
				if cmd&(1<<i) == 0 {
					continue
				}
				if len(delta) == 0 {
					return nil, errBadDelta
				}
				if i < 4 {
					off |= int64(delta[0]) << (8 * i)
				} else {
					n |= int64(delta[0]) << (8 * (i - 4))
				}
				delta = delta[1:]
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > int64(len(base)) || int64(len(out))+n > dstSize {
				return nil, errBadDelta
			}
			out = append(out, base[off:off+n]...)
		case cmd != 0: // insert the next cmd bytes
			n := int(cmd)
			if n > len(delta) || int64(len(out)+n) > dstSize {
				return nil, errBadDelta
			}
			out = append(out, delta[:n]...)
			delta = delta[n:]
		default:
			return nil, errBadDelta
		}
	}
	if int64(len(out)) != dstSize {
		return nil, errBadDelta
	}
	return out, nil
}
