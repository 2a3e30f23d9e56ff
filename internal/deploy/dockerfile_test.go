package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/taskagent/taskagent/internal/runtime/dapr"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, USER, ...
	args string
}

// stage is one FROM and the instructions after it.
type stage struct {
	from, name string
	instrs     []instruction
}

// parseDockerfile splits a Dockerfile into stages. It knows as much of the
// syntax as our Dockerfile uses: comments, line continuations, FROM ... AS name.
func parseDockerfile(src string) ([]stage, error) {
	var stages []stage
	var cur *instruction
	var instrs []instruction
	for i, raw := range strings.Split(src, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cur == nil) {
			continue // comments (and parser directives) go, even inside a continuation
		}
		cont := strings.HasSuffix(line, "\\")
		line = strings.TrimSuffix(line, "\\")
		if cur == nil {
			cmd, args, _ := strings.Cut(line, " ")
			cur = &instruction{line: i + 1, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		} else {
			cur.args = strings.TrimSpace(cur.args + " " + strings.TrimSpace(line))
		}
		if !cont {
			instrs = append(instrs, *cur)
			cur = nil
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: continuation at the end of the file", cur.line)
	}
	for _, in := range instrs {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			} else if len(f) != 1 {
				return nil, fmt.Errorf("line %d: FROM %s: want an image and an optional AS name", in.line, in.args)
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue
			}
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	if len(stages) == 0 {
		return nil, errors.New("no FROM")
	}
	return stages, nil
}

// last returns the arguments of the stage's last instruction cmd.
func (s stage) last(cmd string) (string, bool) {
	for i := len(s.instrs) - 1; i >= 0; i-- {
		if s.instrs[i].cmd == cmd {
			return s.instrs[i].args, true
		}
	}
	return "", false
}

func (s stage) every(cmd string) []string {
	var out []string
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// image is what the Dockerfile says about the image it builds.
type image struct {
	uid, gid   int64
	ports      []int
	entrypoint []string
}

// checkDockerfile checks the image a Dockerfile builds: a multi-stage build of
// a static binary, a final stage that runs as a numeric non-root user, exposes
// appPort and starts a binary that a COPY put there.
func checkDockerfile(src string, appPort int) (image, error) {
	stages, err := parseDockerfile(src)
	if err != nil {
		return image{}, err
	}
	var img image
	var problems []error
	if len(stages) < 2 {
		problems = append(problems, fmt.Errorf("%d stage(s); want a build stage and a final one", len(stages)))
	}
	build, final := stages[0], stages[len(stages)-1]

	runs := strings.Join(build.every("RUN"), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "go build"} {
		if !strings.Contains(runs, want) {
			problems = append(problems, fmt.Errorf("build stage: no RUN has %q", want))
		}
	}
	if !strings.HasPrefix(build.from, "golang:") {
		problems = append(problems, fmt.Errorf("build stage is FROM %s; want golang:<version>", build.from))
	}

	user, ok := final.last("USER")
	if !ok {
		problems = append(problems, errors.New("final stage: no USER (the image would run as root)"))
	} else {
		uid, gid, hasGID := strings.Cut(user, ":")
		img.uid, err = strconv.ParseInt(uid, 10, 64)
		if err != nil {
			problems = append(problems, fmt.Errorf("final stage: USER %s is not numeric; Kubernetes runAsNonRoot cannot check a user name", user))
		} else if img.uid == 0 {
			problems = append(problems, fmt.Errorf("final stage: USER %s is root", user))
		}
		if hasGID {
			img.gid, err = strconv.ParseInt(gid, 10, 64)
			if err != nil || img.gid == 0 {
				problems = append(problems, fmt.Errorf("final stage: USER %s: group must be numeric and not 0", user))
			}
		}
	}

	for _, e := range final.every("EXPOSE") {
		for _, p := range strings.Fields(e) {
			n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
			if err != nil {
				problems = append(problems, fmt.Errorf("final stage: EXPOSE %s: %v", p, err))
				continue
			}
			img.ports = append(img.ports, n)
		}
	}
	if len(img.ports) != 1 || img.ports[0] != appPort {
		problems = append(problems, fmt.Errorf("final stage: EXPOSE %v; want the app port %d", img.ports, appPort))
	}

	if ep, ok := final.last("ENTRYPOINT"); !ok {
		problems = append(problems, errors.New("final stage: no ENTRYPOINT"))
	} else if err := json.Unmarshal([]byte(ep), &img.entrypoint); err != nil || len(img.entrypoint) == 0 {
		problems = append(problems, fmt.Errorf("final stage: ENTRYPOINT %s: want the exec form, a JSON array", ep))
	} else {
		copied := false
		for _, c := range final.every("COPY") {
			f := strings.Fields(c)
			if len(f) >= 2 && strings.HasPrefix(f[0], "--from=") && f[len(f)-1] == img.entrypoint[0] {
				copied = true
			}
		}
		if !copied {
			problems = append(problems, fmt.Errorf("final stage: ENTRYPOINT %s was not copied from a build stage", img.entrypoint[0]))
		}
	}
	return img, errors.Join(problems...)
}

// buildSources returns the paths the build stage copies from the context.
func buildSources(src string) ([]string, error) {
	stages, err := parseDockerfile(src)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range stages[0].every("COPY") {
		f := strings.Fields(c)
		if len(f) < 2 || strings.HasPrefix(f[0], "--from=") {
			continue
		}
		out = append(out, f[:len(f)-1]...)
	}
	return out, nil
}

// checkDockerignore checks that the context leaves out what must not be sent
// (the git history, local data, downloaded tools) and keeps what the build
// copies. Patterns are matched as Docker does for plain names and globs.
func checkDockerignore(ignore string, sources []string) error {
	var patterns []string
	for _, line := range strings.Split(ignore, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		patterns = append(patterns, path.Clean(strings.Trim(line, "/")))
	}
	ignored := func(p string) bool {
		for _, pat := range patterns {
			if ok, _ := path.Match(pat, p); ok || pat == p {
				return true
			}
		}
		return false
	}
	var problems []error
	for _, must := range []string{".git", "data", ".tools"} {
		if !ignored(must) {
			problems = append(problems, fmt.Errorf(".dockerignore does not leave out %s", must))
		}
	}
	for _, s := range sources {
		if ignored(path.Clean(s)) {
			problems = append(problems, fmt.Errorf(".dockerignore leaves out %s, which the Dockerfile copies", s))
		}
	}
	return errors.Join(problems...)
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// theImage checks the Dockerfile and returns what it builds.
func theImage(t *testing.T) image {
	t.Helper()
	img, err := checkDockerfile(readFile(t, dockerfilePath), dapr.AppPort)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return img
}

func TestDockerfile(t *testing.T) {
	img := theImage(t)
	if img.uid != 65532 || img.gid != 65532 {
		t.Errorf("image user %d:%d, want distroless nonroot 65532:65532", img.uid, img.gid)
	}
	sources, err := buildSources(readFile(t, dockerfilePath))
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) == 0 {
		t.Fatal("the build stage copies nothing from the context")
	}
	if err := checkDockerignore(readFile(t, dockerignorePath), sources); err != nil {
		t.Error(err)
	}
}

// TestDockerfileChecksCatchMistakes proves checkDockerfile fails on images that
// run as root or on the wrong port.
func TestDockerfileChecksCatchMistakes(t *testing.T) {
	good := readFile(t, dockerfilePath)
	if !strings.Contains(good, "USER 65532:65532") || !strings.Contains(good, "EXPOSE 8080") {
		t.Fatal("the Dockerfile changed; update this test's mutations")
	}
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"root by name", "USER 65532:65532", "USER root", "not numeric"},
		{"root by number", "USER 65532:65532", "USER 0", "is root"},
		{"root group", "USER 65532:65532", "USER 65532:0", "group"},
		{"user name", "USER 65532:65532", "USER nonroot:nonroot", "not numeric"},
		{"no user", "USER 65532:65532", "", "no USER"},
		{"wrong port", "EXPOSE 8080", "EXPOSE 9090", "want the app port 8080"},
		{"cgo", "CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"shell entrypoint", `ENTRYPOINT ["/taskagent"]`, "ENTRYPOINT /taskagent", "exec form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkDockerfile(strings.Replace(good, tc.from, tc.to, 1), dapr.AppPort)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// A user set in the build stage only does not count.
	moved := strings.Replace(good, "USER 65532:65532", "", 1)
	moved = strings.Replace(moved, "WORKDIR /src", "WORKDIR /src\nUSER 65532:65532", 1)
	if _, err := checkDockerfile(moved, dapr.AppPort); err == nil || !strings.Contains(err.Error(), "no USER") {
		t.Fatalf("USER in the build stage only: got %v, want no USER", err)
	}
	if err := checkDockerignore("cmd\n.git\ndata/\n.tools/\n", []string{"cmd"}); err == nil {
		t.Fatal("a .dockerignore that leaves out cmd passed")
	}
	if err := checkDockerignore("data/\n", nil); err == nil {
		t.Fatal("a .dockerignore that sends .git passed")
	}
}
