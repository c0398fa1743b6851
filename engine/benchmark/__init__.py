"""The precision benchmark: a matrix of model, precision and batch measured for speed, memory and quality;
its runs, regressions between runs, and the choice of a variant (Pareto front, rules)."""
