package infra_test

// There is no Bicep compiler on the machines that run these tests, so this file carries a small,
// tolerant reader of Bicep source: it blanks comments, checks that strings and brackets are closed,
// and parses the literal values (objects, arrays, strings) of top-level declarations. Expressions it
// does not understand are kept as raw text. The structural tests below catch the mistakes a
// compiler would: unbalanced brackets, module parameters that do not exist or are missing, outputs
// that a module does not declare, parameter files that name unknown parameters.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// bicepFile is one source file, its text with comments blanked (same offsets, same lines) and its
// top-level declarations.
type bicepFile struct {
	path    string // relative to infra/
	src     string
	clean   string
	params  map[string]bicepParam
	vars    map[string]*bval
	outputs map[string]bool
	modules []bicepModule
}

type bicepParam struct {
	name       string
	hasDefault bool
	line       int
}

type bicepModule struct {
	symbol string
	path   string // as written
	params *bval  // the params object of the module body (nil if none)
	line   int
}

// bval is a parsed Bicep value. Kind: 'o' object, 'a' array, 's' string literal, 'x' any other
// expression (Raw holds its source text).
type bval struct {
	Kind  byte
	Str   string
	Raw   string
	Keys  []string
	Props map[string]*bval
	Items []*bval
	Line  int
}

func (v *bval) String() string {
	if v == nil {
		return "<nil>"
	}
	if v.Kind == 's' {
		return "'" + v.Str + "'"
	}
	return strings.TrimSpace(v.Raw)
}

var (
	infraOnce  sync.Once
	infraFiles map[string]*bicepFile
	infraErr   error
)

// loadInfra reads and parses every .bicep file under infra/ once per test binary.
func loadInfra(t *testing.T) map[string]*bicepFile {
	t.Helper()
	infraOnce.Do(func() {
		infraFiles = map[string]*bicepFile{}
		var paths []string
		err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".bicep") {
				paths = append(paths, path)
			}
			return nil
		})
		if err != nil {
			infraErr = err
			return
		}
		sort.Strings(paths)
		var errs []string
		for _, p := range paths {
			f, err := parseBicepFile(p)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			infraFiles[filepath.ToSlash(p)] = f
		}
		if len(errs) > 0 {
			infraErr = fmt.Errorf("%s", strings.Join(errs, "\n"))
		}
	})
	if infraErr != nil {
		t.Fatalf("reading infra/*.bicep: %v", infraErr)
	}
	if infraFiles["main.bicep"] == nil {
		t.Fatalf("infra/main.bicep not found")
	}
	return infraFiles
}

func parseBicepFile(path string) (*bicepFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	src := strings.ReplaceAll(string(b), "\r\n", "\n")
	clean, err := cleanBicep(src)
	if err != nil {
		return nil, fmt.Errorf("infra/%s: %v", path, err)
	}
	f := &bicepFile{
		path:    filepath.ToSlash(path),
		src:     src,
		clean:   clean,
		params:  map[string]bicepParam{},
		vars:    map[string]*bval{},
		outputs: map[string]bool{},
	}
	var dup []string
	seen := map[string]int{}
	declRe := regexp.MustCompile(`(?m)^(param|var|resource|module|type)\s+([A-Za-z_]\w*)`)
	for _, m := range declRe.FindAllStringSubmatchIndex(clean, -1) {
		name := clean[m[4]:m[5]]
		if prev, ok := seen[name]; ok {
			dup = append(dup, fmt.Sprintf("%q (lines %d and %d)", name, prev, lineOf(clean, m[0])))
		}
		seen[name] = lineOf(clean, m[0])
	}
	if len(dup) > 0 {
		return nil, fmt.Errorf("infra/%s: symbols declared twice: %s", path, strings.Join(dup, ", "))
	}

	paramRe := regexp.MustCompile(`(?m)^param\s+([A-Za-z_]\w*)\s+([^=\n]*?)\s*(=.*)?$`)
	for _, m := range paramRe.FindAllStringSubmatchIndex(clean, -1) {
		name := clean[m[2]:m[3]]
		f.params[name] = bicepParam{name: name, hasDefault: m[6] >= 0, line: lineOf(clean, m[0])}
	}
	outRe := regexp.MustCompile(`(?m)^output\s+([A-Za-z_]\w*)\s`)
	for _, m := range outRe.FindAllStringSubmatch(clean, -1) {
		f.outputs[m[1]] = true
	}
	varRe := regexp.MustCompile(`(?m)^var\s+([A-Za-z_]\w*)\s*=\s*`)
	for _, m := range varRe.FindAllStringSubmatchIndex(clean, -1) {
		p := &bparser{src: clean, pos: m[1]}
		v, err := p.value()
		if err != nil {
			return nil, fmt.Errorf("infra/%s:%d: var %s: %v", path, lineOf(clean, m[0]), clean[m[2]:m[3]], err)
		}
		f.vars[clean[m[2]:m[3]]] = v
	}
	modRe := regexp.MustCompile(`(?m)^module\s+([A-Za-z_]\w*)\s+'([^']+)'\s*=\s*`)
	for _, m := range modRe.FindAllStringSubmatchIndex(clean, -1) {
		mod := bicepModule{symbol: clean[m[2]:m[3]], path: clean[m[4]:m[5]], line: lineOf(clean, m[0])}
		open := strings.IndexByte(clean[m[1]:], '{')
		if open < 0 {
			return nil, fmt.Errorf("infra/%s:%d: module %s has no body", path, mod.line, mod.symbol)
		}
		p := &bparser{src: clean, pos: m[1] + open}
		body, err := p.value()
		if err != nil {
			return nil, fmt.Errorf("infra/%s:%d: module %s: %v", path, mod.line, mod.symbol, err)
		}
		if body.Kind == 'o' {
			mod.params = body.Props["params"]
		}
		f.modules = append(f.modules, mod)
	}
	return f, nil
}

func lineOf(s string, pos int) int { return 1 + strings.Count(s[:pos], "\n") }

// cleanBicep returns src with comments replaced by spaces (newlines kept), after checking that
// every string is terminated and every bracket is closed by its partner.
func cleanBicep(src string) (string, error) {
	out := []byte(src)
	type open struct {
		c   byte
		pos int
	}
	var stack []open
	closer := map[byte]byte{'(': ')', '[': ']', '{': '}'}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				out[i] = ' '
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return "", fmt.Errorf("line %d: unterminated /* comment", lineOf(src, i))
			}
			for j := i; j < i+2+end+2; j++ {
				if out[j] != '\n' {
					out[j] = ' '
				}
			}
			i += 2 + end + 2
		case c == '\'':
			end, _, err := scanString(src, i)
			if err != nil {
				return "", err
			}
			i = end
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, open{c, i})
			i++
		case c == ')' || c == ']' || c == '}':
			if len(stack) == 0 {
				return "", fmt.Errorf("line %d: unexpected %q", lineOf(src, i), c)
			}
			top := stack[len(stack)-1]
			if closer[top.c] != c {
				return "", fmt.Errorf("line %d: %q closes %q opened on line %d", lineOf(src, i), c, top.c, lineOf(src, top.pos))
			}
			stack = stack[:len(stack)-1]
			i++
		default:
			i++
		}
	}
	if len(stack) > 0 {
		top := stack[len(stack)-1]
		return "", fmt.Errorf("line %d: %q is never closed", lineOf(src, top.pos), top.c)
	}
	return string(out), nil
}

// scanString scans the string whose opening quote is at src[i] and returns the offset after it and
// whether it interpolates. Multi-line (triple-quoted) strings have no escapes or interpolation.
func scanString(src string, i int) (end int, interpolated bool, err error) {
	if strings.HasPrefix(src[i:], "'''") {
		e := strings.Index(src[i+3:], "'''")
		if e < 0 {
			return 0, false, fmt.Errorf("line %d: unterminated ''' string", lineOf(src, i))
		}
		return i + 3 + e + 3, false, nil
	}
	j := i + 1
	for j < len(src) {
		switch {
		case src[j] == '\\':
			j += 2
		case src[j] == '\'':
			return j + 1, interpolated, nil
		case src[j] == '\n':
			return 0, false, fmt.Errorf("line %d: string not closed before end of line", lineOf(src, i))
		case strings.HasPrefix(src[j:], "${"):
			interpolated = true
			depth := 1
			j += 2
			for j < len(src) && depth > 0 {
				switch src[j] {
				case '{':
					depth++
					j++
				case '}':
					depth--
					j++
				case '\'':
					e, _, err := scanString(src, j)
					if err != nil {
						return 0, false, err
					}
					j = e
				case '\n':
					return 0, false, fmt.Errorf("line %d: interpolation not closed before end of line", lineOf(src, i))
				default:
					j++
				}
			}
		default:
			j++
		}
	}
	return 0, false, fmt.Errorf("line %d: unterminated string", lineOf(src, i))
}

// unquote resolves the escapes of a non-interpolated Bicep string literal (without its quotes).
func unquote(s string) string {
	r := strings.NewReplacer(`\'`, `'`, `\\`, `\`, `\n`, "\n", `\r`, "\r", `\t`, "\t", `\$`, `$`)
	return r.Replace(s)
}

// bparser parses Bicep values from comment-free source.
type bparser struct {
	src string
	pos int
}

func (p *bparser) skipInline() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

func (p *bparser) skipSeparators() {
	for p.pos < len(p.src) && strings.IndexByte(" \t\r\n,", p.src[p.pos]) >= 0 {
		p.pos++
	}
}

// atValueEnd reports whether the current value ends here (end of line, separator or closer).
func (p *bparser) atValueEnd() bool {
	p.skipInline()
	return p.pos >= len(p.src) || strings.IndexByte("\n,}])", p.src[p.pos]) >= 0
}

func (p *bparser) value() (*bval, error) {
	p.skipInline()
	if p.pos >= len(p.src) {
		return nil, fmt.Errorf("value expected at end of file")
	}
	start := p.pos
	line := lineOf(p.src, start)
	switch p.src[p.pos] {
	case '{':
		v, err := p.object()
		if err != nil {
			return nil, err
		}
		if p.atValueEnd() {
			v.Raw, v.Line = p.src[start:p.pos], line
			return v, nil
		}
	case '[':
		if !regexp.MustCompile(`^\[\s*for\s`).MatchString(p.src[p.pos:]) {
			v, err := p.array()
			if err != nil {
				return nil, err
			}
			if p.atValueEnd() {
				v.Raw, v.Line = p.src[start:p.pos], line
				return v, nil
			}
		}
	case '\'':
		end, interp, err := scanString(p.src, p.pos)
		if err != nil {
			return nil, err
		}
		p.pos = end
		if !interp && !strings.HasPrefix(p.src[start:], "'''") && p.atValueEnd() {
			return &bval{Kind: 's', Str: unquote(p.src[start+1 : end-1]), Raw: p.src[start:end], Line: line}, nil
		}
	}
	p.pos = start
	return p.expression()
}

// expression consumes any other expression up to the end of the value.
func (p *bparser) expression() (*bval, error) {
	start := p.pos
	line := lineOf(p.src, start)
	depth := 0
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\'':
			end, _, err := scanString(p.src, p.pos)
			if err != nil {
				return nil, err
			}
			p.pos = end
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			if depth == 0 {
				return p.raw(start, line)
			}
			depth--
		case (c == '\n' || c == ',') && depth == 0:
			return p.raw(start, line)
		}
		p.pos++
	}
	return p.raw(start, line)
}

func (p *bparser) raw(start, line int) (*bval, error) {
	text := strings.TrimSpace(p.src[start:p.pos])
	if text == "" {
		return nil, fmt.Errorf("line %d: value expected", line)
	}
	return &bval{Kind: 'x', Raw: text, Line: line}, nil
}

var identRe = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*`)

func (p *bparser) object() (*bval, error) {
	v := &bval{Kind: 'o', Props: map[string]*bval{}}
	p.pos++ // {
	for {
		p.skipSeparators()
		if p.pos >= len(p.src) {
			return nil, fmt.Errorf("object not closed")
		}
		if p.src[p.pos] == '}' {
			p.pos++
			return v, nil
		}
		line := lineOf(p.src, p.pos)
		var key string
		if p.src[p.pos] == '\'' {
			end, interp, err := scanString(p.src, p.pos)
			if err != nil {
				return nil, err
			}
			key = p.src[p.pos:end]
			if !interp {
				key = unquote(key[1 : len(key)-1])
			}
			p.pos = end
		} else if m := identRe.FindString(p.src[p.pos:]); m != "" {
			key = m
			p.pos += len(m)
		} else {
			return nil, fmt.Errorf("line %d: property name expected, found %q", line, firstLine(p.src[p.pos:]))
		}
		p.skipInline()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, fmt.Errorf("line %d: ':' expected after property %q", line, key)
		}
		p.pos++
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		if _, dup := v.Props[key]; dup {
			return nil, fmt.Errorf("line %d: property %q set twice", line, key)
		}
		v.Keys = append(v.Keys, key)
		v.Props[key] = val
	}
}

func (p *bparser) array() (*bval, error) {
	v := &bval{Kind: 'a'}
	p.pos++ // [
	for {
		p.skipSeparators()
		if p.pos >= len(p.src) {
			return nil, fmt.Errorf("array not closed")
		}
		if p.src[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		item, err := p.value()
		if err != nil {
			return nil, err
		}
		v.Items = append(v.Items, item)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// ---------------------------------------------------------------------------------------------
// Structural tests: what `bicep build` would reject.
// ---------------------------------------------------------------------------------------------

func TestBicepFilesParse(t *testing.T) {
	files := loadInfra(t)
	for path, f := range files {
		if len(f.vars) == 0 && len(f.params) == 0 {
			t.Errorf("infra/%s declares no params or vars; is it empty?", path)
		}
	}
	// Every resource declaration names a type with an API version.
	resRe := regexp.MustCompile(`(?m)^\s*resource\s+[A-Za-z_]\w*\s+'([^']+)'`)
	verRe := regexp.MustCompile(`^[A-Za-z]+\.[A-Za-z]+/[A-Za-z/]+@\d{4}-\d{2}-\d{2}(-preview)?$`)
	for path, f := range files {
		for _, m := range resRe.FindAllStringSubmatch(f.clean, -1) {
			if !verRe.MatchString(m[1]) {
				t.Errorf("infra/%s: resource type %q is not <Provider>/<type>@<api-version>", path, m[1])
			}
		}
	}
}

func TestBicepModuleWiring(t *testing.T) {
	files := loadInfra(t)
	for path, f := range files {
		for _, mod := range f.modules {
			target := filepath.ToSlash(filepath.Join(filepath.Dir(path), mod.path))
			tf := files[target]
			if tf == nil {
				t.Errorf("infra/%s:%d: module %s points at %q, which does not exist", path, mod.line, mod.symbol, mod.path)
				continue
			}
			passed := map[string]bool{}
			if mod.params != nil {
				if mod.params.Kind != 'o' {
					t.Errorf("infra/%s:%d: module %s: params is not an object literal", path, mod.line, mod.symbol)
					continue
				}
				for _, k := range mod.params.Keys {
					passed[k] = true
					if _, ok := tf.params[k]; !ok {
						t.Errorf("infra/%s:%d: module %s passes param %q, which infra/%s does not declare", path, mod.line, mod.symbol, k, target)
					}
				}
			}
			for name, p := range tf.params {
				if !p.hasDefault && !passed[name] {
					t.Errorf("infra/%s:%d: module %s does not pass required param %q of infra/%s", path, mod.line, mod.symbol, name, target)
				}
			}
			outRe := regexp.MustCompile(`\b` + mod.symbol + `(?:\[[^\]]*\])?[!?]?\.\??outputs\.([A-Za-z_]\w*)`)
			for _, m := range outRe.FindAllStringSubmatch(f.clean, -1) {
				if !tf.outputs[m[1]] {
					t.Errorf("infra/%s: %s.outputs.%s is not an output of infra/%s", path, mod.symbol, m[1], target)
				}
			}
		}
	}
}

func TestBicepParamFiles(t *testing.T) {
	files := loadInfra(t)
	paths, _ := filepath.Glob("*.bicepparam")
	if len(paths) == 0 {
		t.Fatal("no infra/*.bicepparam files: make deploy ENV=<env> expects infra/main.<env>.bicepparam")
	}
	for _, env := range []string{"dev", "prod"} {
		if _, err := os.Stat("main." + env + ".bicepparam"); err != nil {
			t.Errorf("infra/main.%s.bicepparam is missing (make deploy ENV=%s)", env, env)
		}
	}
	usingRe := regexp.MustCompile(`(?m)^using\s+'([^']+)'`)
	setRe := regexp.MustCompile(`(?m)^param\s+([A-Za-z_]\w*)\s*=`)
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		clean, err := cleanBicep(string(b))
		if err != nil {
			t.Errorf("infra/%s: %v", path, err)
			continue
		}
		u := usingRe.FindStringSubmatch(clean)
		if u == nil {
			t.Errorf("infra/%s: no `using` statement", path)
			continue
		}
		target := filepath.ToSlash(filepath.Clean(u[1]))
		tf := files[target]
		if tf == nil {
			t.Errorf("infra/%s: uses %q, which does not exist", path, u[1])
			continue
		}
		set := map[string]bool{}
		for _, m := range setRe.FindAllStringSubmatch(clean, -1) {
			if set[m[1]] {
				t.Errorf("infra/%s: param %s set twice", path, m[1])
			}
			set[m[1]] = true
			if _, ok := tf.params[m[1]]; !ok {
				t.Errorf("infra/%s: param %s is not a parameter of infra/%s", path, m[1], target)
			}
		}
		for name, p := range tf.params {
			if !p.hasDefault && !set[name] {
				t.Errorf("infra/%s: required param %s of infra/%s is not set", path, name, target)
			}
		}
	}
}

// TestBicepReader keeps the reader honest on the constructs the templates use.
func TestBicepReader(t *testing.T) {
	src := `// comment with 'quote'
var a = {
  plain: 'x'
  'quoted-key': 'it\'s'
  num: -1
  expr: cond ? {
    inner: 'y'
  } : null
  interp: 'https://${host}/${path}' // trailing
  list: [
    'one'
    two
  ]
  call: union({
    k: 'v'
  }, other)
}
/* block
   comment */
var b = [for x in y: {
  name: x
}]
`
	clean, err := cleanBicep(src)
	if err != nil {
		t.Fatal(err)
	}
	p := &bparser{src: clean, pos: strings.Index(clean, "{")}
	v, err := p.value()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"plain", "quoted-key", "num", "expr", "interp", "list", "call"}
	if strings.Join(v.Keys, ",") != strings.Join(want, ",") {
		t.Fatalf("keys = %v, want %v", v.Keys, want)
	}
	if got := v.Props["quoted-key"]; got.Kind != 's' || got.Str != "it's" {
		t.Errorf("quoted-key = %v", got)
	}
	if got := v.Props["num"]; got.Kind != 'x' || got.Raw != "-1" {
		t.Errorf("num = %v", got)
	}
	if got := v.Props["interp"]; got.Kind != 'x' {
		t.Errorf("interp = %v, want an expression", got)
	}
	if got := v.Props["list"]; got.Kind != 'a' || len(got.Items) != 2 || got.Items[0].Str != "one" {
		t.Errorf("list = %v", got)
	}
	for _, bad := range []string{"var a = {\n", "var a = 'x\n", "var a = [\n}\n", "var s = '${x'\n"} {
		if _, err := cleanBicep(bad); err == nil {
			t.Errorf("cleanBicep(%q) succeeded, want an error", bad)
		}
	}
}
