package sqlite

// Queries added for the work diary (pow.do/dvm/diary). Kept in their own file so the
// store's own files stay as they are.

import (
	"context"
	"database/sql"
	"fmt"

	"pow.do/dvm/store"
)

// ImportSegments stores many verified segments in one write transaction: every record is
// validated first and its files written, then all rows go in together or none do. A
// record whose bundle is already stored is skipped; a conflicting one fails the whole
// import. It returns how many segments were new.
//
// It is InsertSegment for bulk loads (restoring an export, filling a benchmark database):
// one fsync for the lot instead of one per segment.
func (d *DB) ImportSegments(ctx context.Context, recs []*store.SegmentRecord) (int, error) {
	shots := make([][]store.ScreenshotMeta, len(recs))
	for i, rec := range recs {
		if rec == nil {
			return 0, fmt.Errorf("import segments: record %d: %w: nil record", i, store.ErrInvalid)
		}
		if err := rec.Validate(); err != nil {
			return 0, fmt.Errorf("import segments: record %d (%s/%d): %w", i, rec.Session, rec.Index, err)
		}
		var err error
		if shots[i], err = d.putFiles(rec); err != nil {
			return 0, fmt.Errorf("import segments: %s/%d: %w", rec.Session, rec.Index, err)
		}
	}
	now := d.now()
	n := 0
	err := d.write(ctx, "import segments", func(tx *sql.Tx) error {
		for i, rec := range recs {
			dup, err := existingSegment(ctx, tx, rec)
			if err != nil {
				return fmt.Errorf("import segments: %w", err)
			}
			if dup {
				continue
			}
			received := rec.ReceivedAt
			if received.IsZero() {
				received = now
			}
			if err := insertSegmentTx(ctx, tx, rec, shots[i], received); err != nil {
				return fmt.Errorf("import segments: %s/%d: %w", rec.Session, rec.Index, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
