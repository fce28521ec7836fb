#!/usr/bin/env bash
# Reference values for deployguard-core/src/analysis/breach.rs from confseq itself: its
# one-sided beta-binomial mixture (`beta_binomial_log_mixture`), compiled from the confseq 0.0.11
# sdist's C++ header (its Python wheel does not build on Python 3.11). Needs g++, pip and the
# boost headers (Debian: libboost-dev). Prints: events trials p0 n_opt alpha_opt -> ln e.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip download --quiet --no-deps confseq==0.0.11 -d "$work" >/dev/null
tar xzf "$work"/confseq-0.0.11.tar.gz -C "$work"
cat >"$work/drv.cpp" <<'CPP'
#include "uniform_boundaries.h"
#include <cstdio>
int main() {
  struct C { double events, trials, p0, n_opt, alpha_opt; } cs[] = {
    {25, 1000, 0.01, 1000, 0.005}, {5, 1000, 0.01, 1000, 0.005}, {1300, 100000, 0.01, 1000, 0.005},
    {0, 50, 0.01, 1000, 0.005}, {12, 100, 0.05, 1000, 0.005}, {150, 780, 0.01, 1000, 0.005},
  };
  for (auto c : cs) {
    double g = c.p0, h = 1 - c.p0;
    double s = c.events - c.trials * g, v = c.trials * g * h, v_opt = c.n_opt * g * h;
    printf("%.17g %.17g %.17g %.17g %.17g -> %.17g\n", c.events, c.trials, c.p0, c.n_opt,
           c.alpha_opt, confseq::beta_binomial_log_mixture(s, v, v_opt, g, h, c.alpha_opt, true));
  }
}
CPP
g++ -O2 -std=c++17 -I"$work"/confseq-0.0.11/src/confseq "$work/drv.cpp" -o "$work/drv"
"$work/drv"
