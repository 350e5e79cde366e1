package plugin_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// guide is the author guide this example follows, in the repository that holds both.
const guide = "../../docs/plugins/author-guide.md"

// TestGuideShowsThisCode checks that the guide's code blocks introduced by a file of this
// example ("`examples/datastore-plugin/<file>`:") are that file, whole: the guide's test example
// is the test above, so it compiles and passes whenever this module's tests do.
func TestGuideShowsThisCode(t *testing.T) {
	doc, err := os.ReadFile(guide)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s not found: this copy of the example is outside the kamaji repository", guide)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"conformance_test.go", "cmd/kamaji-datastore-example/main.go"} {
		block, ok := codeBlock(string(doc), "`examples/datastore-plugin/"+file+"`")
		if !ok {
			t.Errorf("%s has no Go code block introduced by `examples/datastore-plugin/%s`", guide, file)
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal([]byte(block), src) {
			t.Errorf("the code block of %s in %s differs from the file; make them equal.\nguide:\n%s\nfile:\n%s", file, guide, block, src)
		}
	}
}

// codeBlock returns the content of the ```go block that follows the first line ending with
// marker and a colon (blank lines in between allowed), with a final newline.
func codeBlock(doc, marker string) (string, bool) {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if !strings.HasSuffix(strings.TrimSpace(l), marker+":") {
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j == len(lines) || lines[j] != "```go" {
			return "", false
		}
		var b strings.Builder
		for _, code := range lines[j+1:] {
			if code == "```" {
				return b.String(), true
			}
			b.WriteString(code + "\n")
		}
		return "", false
	}
	return "", false
}
