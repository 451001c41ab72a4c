package roster

import (
	"fmt"
	"strings"

	"rsc.io/qr"
)

// QR renders text as a QR code for a terminal, two modules per character row with half
// blocks. Light modules are drawn as blocks, so the code reads correctly on the usual
// dark terminal background; quiet zone included.
func QR(text string) (string, error) {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return "", fmt.Errorf("QR code: %w", err)
	}
	const quiet = 2
	n := code.Size + 2*quiet
	light := func(x, y int) bool { return !code.Black(x-quiet, y-quiet) }
	var b strings.Builder
	for y := 0; y < n; y += 2 {
		for x := 0; x < n; x++ {
			top, bottom := light(x, y), y+1 >= n || light(x, y+1)
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}
