package reshard

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// change is one row change of a test_decoding line.
type change struct {
	table string  // "public.users"
	op    string  // INSERT | UPDATE | DELETE | TRUNCATE
	ids   []int64 // the id column's values on the line (an UPDATE that changes the key has two)
}

// errNotAChange is parseChange's answer for BEGIN and COMMIT lines.
var errNotAChange = errors.New("not a row change")

// parseChange reads one line of the test_decoding output plugin:
//
//	table public.users: INSERT: id[bigint]:1 name[text]:'a b''c' score[bigint]:5
//	table public.users: UPDATE: old-key: id[bigint]:1 new-tuple: id[bigint]:2 ...
//	table public.users: DELETE: id[bigint]:-7
//	table public.users: TRUNCATE: (no-flags)
//
// and returns the values of the column named id. Quoted values may hold
// anything, "id[bigint]:9" included: they are skipped whole.
func parseChange(line string) (change, error) {
	if line == "BEGIN" || strings.HasPrefix(line, "BEGIN ") || line == "COMMIT" || strings.HasPrefix(line, "COMMIT ") {
		return change{}, errNotAChange
	}
	rest, ok := strings.CutPrefix(line, "table ")
	if !ok {
		return change{}, fmt.Errorf("reshard: decoding line %.80q: want BEGIN, COMMIT or a table row change", line)
	}
	tbl, rest, ok := strings.Cut(rest, ": ")
	if !ok || tbl == "" {
		return change{}, fmt.Errorf("reshard: decoding line %.80q: no table name", line)
	}
	op, rest, _ := strings.Cut(rest, ":")
	c := change{table: tbl, op: op}
	switch op {
	case "TRUNCATE":
		return c, nil
	case "INSERT", "UPDATE", "DELETE":
	default:
		return change{}, fmt.Errorf("reshard: decoding line %.80q: unknown operation %q", line, op)
	}
	for rest = strings.TrimLeft(rest, " "); rest != ""; rest = strings.TrimLeft(rest, " ") {
		if r, ok := strings.CutPrefix(rest, "old-key:"); ok {
			rest = r
			continue
		}
		if r, ok := strings.CutPrefix(rest, "new-tuple:"); ok {
			rest = r
			continue
		}
		if r, ok := strings.CutPrefix(rest, "(no-tuple-data)"); ok {
			rest = r
			continue
		}
		br := strings.IndexByte(rest, '[')
		if br <= 0 {
			return change{}, fmt.Errorf("reshard: decoding line %.80q: want column[type]:value at %.30q", line, rest)
		}
		col := rest[:br]
		end := strings.Index(rest[br:], "]:")
		if end < 0 {
			return change{}, fmt.Errorf("reshard: decoding line %.80q: column %q has no \"]:\" after its type", line, col)
		}
		rest = rest[br+end+2:]
		var val string
		if strings.HasPrefix(rest, "'") {
			i := 1
			for {
				j := strings.IndexByte(rest[i:], '\'')
				if j < 0 {
					return change{}, fmt.Errorf("reshard: decoding line %.80q: unterminated quote in column %q", line, col)
				}
				i += j + 1
				if i < len(rest) && rest[i] == '\'' { // '' is a quote inside the value
					i++
					continue
				}
				break
			}
			val, rest = rest[:i], rest[i:]
		} else {
			sp := strings.IndexByte(rest, ' ')
			if sp < 0 {
				sp = len(rest)
			}
			val, rest = rest[:sp], rest[sp:]
		}
		if col == "id" {
			id, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return change{}, fmt.Errorf("reshard: decoding line %.80q: id %q: %w", line, val, err)
			}
			c.ids = append(c.ids, id)
		}
	}
	if len(c.ids) == 0 {
		return change{}, fmt.Errorf("reshard: decoding line %.80q: no id column", line)
	}
	return c, nil
}
