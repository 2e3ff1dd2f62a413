#!/usr/bin/python3
"""Reads a moe-dist results file with h5py, as a researcher's script would, and checks the layout
documented in docs/results-format.md: shapes, dtypes, NaN padding of unused choice columns, root
attributes, the summary group, and (mean/weighted mode) that the mixture's letter probabilities
are the weighted mean of the experts'.

    check_results_h5py.py FILE [--mean-mode]

Exit status 0: all checks passed; 1: a check failed; 77: h5py/numpy not available (ctest skip).
"""
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"skipped: {e} (needs Debian's python3-h5py for /usr/bin/python3)")
    sys.exit(77)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def main():
    path = sys.argv[1]
    mean_mode = "--mean-mode" in sys.argv[2:]
    with h5py.File(path, "r") as f:
        a = f.attrs
        for name in ["format_version", "models", "model_hashes", "mode", "weights", "scoring", "prompt_style",
                     "mixture_space", "command_line", "config_yaml", "version", "ranks", "devices", "start_time",
                     "end_time", "split", "shots", "data_root", "status", "resume_times", "max_choices"]:
            check(name in a, f"root attribute {name} present")
        check(text(a["status"]) == "complete", f"status complete, got {a['status']!r}")
        check(int(a["format_version"]) == 1, "format_version 1")
        check(text(a["mixture_space"]) in ("full-vocabulary", "answer-letters"), "mixture_space value")
        experts = [text(x) for x in f["experts"][:]]
        subjects = [text(x) for x in f["subjects"][:]]
        E, C = len(experts), int(a["max_choices"])
        check(len(a["models"]) == E and len(a["model_hashes"]) == E, "one model path and hash per expert")
        check(f["subject_categories"].shape == (len(subjects),), "subject_categories parallel to subjects")
        check(f["subject_subcategories"].shape == (len(subjects),), "subject_subcategories parallel to subjects")
        N = f["gold"].shape[0]
        check(N > 0, "rows present")
        shapes = {
            "subject": ((N,), np.int32), "index": ((N,), np.int64), "gold": ((N,), np.int32),
            "num_choices": ((N,), np.int32), "shots": ((N,), np.int32), "prompt_tokens": ((N, E), np.int32),
            "prediction": ((N,), np.int32), "correct": ((N,), np.uint8), "weights": ((N, E), np.float32),
            "expert_entropy": ((N, E), np.float32), "mixture_entropy": ((N,), np.float32),
            "expert_letter_probs": ((N, E, C), np.float32), "mixture_letter_probs": ((N, C), np.float32),
            "expert_choice_probs": ((N, E, C), np.float32), "mixture_choice_probs": ((N, C), np.float32),
            "expert_prediction": ((N, E), np.int32), "expert_correct": ((N, E), np.uint8),
            "expert_vocab_choice": ((N, E), np.int32), "mixture_vocab_choice": ((N,), np.int32),
            "expert_letter_mass": ((N, E), np.float32), "mixture_letter_mass": ((N,), np.float32),
        }
        for name, (shape, dtype) in shapes.items():
            d = f[name]
            check(d.shape == shape, f"{name} shape {d.shape} == {shape}")
            check(d.dtype == dtype, f"{name} dtype {d.dtype} == {np.dtype(dtype)}")
            check(d.maxshape[0] is None and d.chunks is not None, f"{name} chunked and extendible along N")

        k = f["num_choices"][:]
        gold = f["gold"][:]
        check(bool(np.all((gold >= 0) & (gold < k))), "gold within the choices")
        check(np.unique(np.stack([f["subject"][:], f["index"][:]]), axis=1).shape[1] == N, "(subject, index) unique")
        valid = np.arange(C)[None, :] < k[:, None]  # [N, C]
        check(bool(np.any(~valid)), "some question has fewer than C choices (padding exercised)")
        for name in ["mixture_letter_probs", "mixture_choice_probs"]:
            v = f[name][:]
            check(bool(np.all(np.isnan(v[~valid]))), f"{name}: unused columns NaN")
            check(not np.any(np.isnan(v[valid])), f"{name}: used columns finite")
        for name in ["expert_letter_probs", "expert_choice_probs"]:
            v = f[name][:]
            check(bool(np.all(np.isnan(v.transpose(0, 2, 1)[~valid]))), f"{name}: unused columns NaN")
            check(not np.any(np.isnan(v.transpose(0, 2, 1)[valid])), f"{name}: used columns finite")

        cp = f["expert_choice_probs"][:]
        check(np.allclose(np.nansum(cp, axis=2), 1, atol=1e-5), "expert choice probs sum to 1 over the choices")
        lp = f["expert_letter_probs"][:]
        check(np.allclose(np.nansum(lp, axis=2), f["expert_letter_mass"][:], atol=1e-5),
              "expert letter mass = sum of letter probs")
        check(np.array_equal(f["correct"][:], (f["prediction"][:] == gold).astype(np.uint8)), "correct = prediction == gold")
        check(np.array_equal(f["expert_correct"][:], (f["expert_prediction"][:] == gold[:, None]).astype(np.uint8)),
              "expert_correct = expert_prediction == gold")

        if mean_mode:
            check(text(a["mode"]) == "mean", "file is mean mode")
            w = f["weights"][:]
            check(np.allclose(w, 1.0 / E), "mean mode: uniform weights")
            mix = f["mixture_letter_probs"][:]
            expected = np.nanmean(lp, axis=1)  # NaN columns stay NaN
            check(np.allclose(mix[valid], expected[valid], rtol=1e-5, atol=1e-7),
                  "mixture letter probs = mean of the experts' letter probs")

        s = f["summary"]
        cols = [text(x) for x in s["columns"][:]]
        check(cols == experts + ["mixture", "oracle"], f"summary columns {cols}")
        outcomes = np.concatenate([f["expert_correct"][:], f["correct"][:][:, None],
                                   f["expert_correct"][:].any(axis=1)[:, None]], axis=1).astype(float)
        check(np.allclose(s["micro_accuracy"][:], outcomes.mean(axis=0)), "summary micro accuracy")
        check(int(s.attrs["questions"]) == N, "summary questions")
        mvb = s["mixture_vs_best"].attrs
        check(0 <= float(mvb["mcnemar_p"]) <= 1, "McNemar p in [0, 1]")
        check(float(mvb["ci_low"]) <= float(mvb["difference"]) <= float(mvb["ci_high"]), "CI contains the difference")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print(f"ok: {path}: {N} questions, {E} experts, C={C}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
