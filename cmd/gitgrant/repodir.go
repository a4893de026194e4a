package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gitgrant/gitgrant"
)

// localRepo resolves --repo for the commands that read the working tree.
// A directory that does not exist is a failure to read the file system
// (exit 3), not invalid input. The default "." also works from any
// subfolder of the access repository: it walks up to the folder that
// holds gitgrant.yaml, stopping at the top of the git work tree. paths
// given relative to the current folder are rewritten relative to it.
func localRepo(dir string, paths []string) (string, []string, error) {
	cwd, err := os.Getwd()
	if err != nil {
		cwd = ""
	}
	return localRepoFrom(cwd, dir, paths)
}

// localRepoFrom is localRepo run from the folder cwd.
func localRepoFrom(cwd, dir string, paths []string) (string, []string, error) {
	explicit := dir != "."
	if !filepath.IsAbs(dir) && cwd != "" {
		dir = filepath.Join(cwd, dir)
	}
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil, &gitgrant.SystemError{System: "file system", Op: "open --repo " + dir, Err: errors.New("no such directory")}
	case err != nil:
		return "", nil, &gitgrant.SystemError{System: "file system", Op: "open --repo " + dir, Err: err}
	case !info.IsDir():
		return "", nil, &gitgrant.SystemError{System: "file system", Op: "open --repo " + dir, Err: errors.New("not a directory")}
	}
	if explicit || cwd == "" || exists(filepath.Join(dir, gitgrant.ConfigPath)) {
		return dir, paths, nil
	}
	for p := cwd; ; {
		if exists(filepath.Join(p, gitgrant.ConfigPath)) {
			out := make([]string, 0, len(paths))
			for _, path := range paths {
				rel, err := filepath.Rel(p, filepath.Join(cwd, path))
				if err != nil {
					return "", nil, fmt.Errorf("%s: %w", path, err)
				}
				out = append(out, filepath.ToSlash(rel))
			}
			return p, out, nil
		}
		if exists(filepath.Join(p, ".git")) || filepath.Dir(p) == p {
			return dir, paths, nil // the top of the work tree: no gitgrant.yaml here
		}
		p = filepath.Dir(p)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
