"""Questions the embedded model (Gemma 3 270M) answers right, for tests that check its answer.

Greedy answers of a 270M model change with the CPU's arithmetic: an AVX2 build
and an AVX-512 one differ ("What is the capital of France?" gets Paris from one
only, with the default agent's instructions). BERLIN got the right answer from
both; BLUE from the AVX2 build, which ``make install`` and the image compile.
"""

BERLIN = "What is the capital of Germany?"  # "... Berlin."
BLUE = "What color is the sky on a clear day?"  # "... blue."
