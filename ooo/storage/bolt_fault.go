package storage

import (
	"fmt"
	"runtime/debug"
)

// guard runs fn, which touches a bbolt file, so that damage in the file becomes an error
// instead of the end of the process. bbolt panics when a page it reads is not what its
// parent says (an assertion, a slice out of range), and a read of the memory-mapped file
// past its end, or at a pointer made of garbage, faults with SIGBUS or SIGSEGV, which the
// runtime turns into a panic only on a goroutine that asked for it
// (debug.SetPanicOnFault). guard asks for it while fn runs and turns any panic of fn
// into an error wrapping ErrCorrupt, prefixed with what (what was being done).
//
// bbolt's View and Update roll their transaction back on a panic, so the file is left
// as it was and the storage keeps serving what is readable.
func guard(what string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: damaged file (%v): %w", what, p, ErrCorrupt)
		}
	}()
	return fn()
}
