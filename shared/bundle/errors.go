package bundle

import "errors"

// ErrRefused matches (errors.Is) every refusal below: the bundle itself is bad, so
// retrying the same bytes can never succeed. Other errors from Open come from the
// io.ReaderAt it was given.
var ErrRefused = errors.New("bundle refused")

// refusal is a sentinel that also matches ErrRefused.
type refusal struct{ msg string }

func (e *refusal) Error() string        { return e.msg }
func (e *refusal) Is(target error) bool { return target == ErrRefused }

func refuse(msg string) error { return &refusal{msg: msg} }

// Each refusal of PROTOCOL.md section 2 "Reading a bundle safely" has its own error.
var (
	ErrNotZip          = refuse("not a zip archive")
	ErrTruncated       = refuse("truncated archive")
	ErrCorrupt         = refuse("corrupt entry data")
	ErrTooManyEntries  = refuse("too many entries")
	ErrAbsolutePath    = refuse("absolute entry name")
	ErrParentPath      = refuse("entry name contains ..")
	ErrBackslash       = refuse("entry name contains a backslash")
	ErrDuplicateName   = refuse("duplicate entry name")
	ErrUnlisted        = refuse("entry not listed in the manifest")
	ErrNoManifest      = refuse("manifest.json missing")
	ErrMissingFile     = refuse("file listed in the manifest missing from the archive")
	ErrEntryTooLarge   = refuse("entry too large")
	ErrTotalTooLarge   = refuse("total uncompressed size too large")
	ErrRatio           = refuse("compression ratio too high")
	ErrSizeMismatch    = refuse("size differs from the manifest")
	ErrHashMismatch    = refuse("sha256 differs from the manifest")
	ErrVersion         = refuse("unsupported manifest version")
	ErrInvalidManifest = refuse("invalid manifest")
	ErrInvalidActivity = refuse("invalid activity.json")
	ErrNotJPEG         = refuse("screenshot is not a JPEG")
)
