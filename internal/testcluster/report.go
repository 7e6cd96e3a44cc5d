package testcluster

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// PrintSteps writes the table of a scenario's steps (what was done, how long it took,
// what came of it), as the examples print them.
func PrintSteps(w io.Writer, rows [][3]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tTIME\tRESULT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r[0], r[1], r[2])
	}
	_ = tw.Flush()
}

// FormatDuration prints d for a table: "-" for none, µs below a millisecond, ms with
// two decimals below a second, else rounded to the millisecond.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(time.Millisecond).String()
}
