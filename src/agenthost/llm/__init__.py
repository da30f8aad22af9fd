"""Models behind one ``ChatModel`` seam: local (llama.cpp), openai, test, function."""
