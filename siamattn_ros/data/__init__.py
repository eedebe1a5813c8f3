"""Image sources, object cut-outs with exact masks, semi-synthetic sequences and pairs, dataset loaders, sequence I/O.

Nothing here imports ROS or the model; everything works on NumPy BGR uint8 images.
"""
from siamattn_ros.data.sequence import Sequence, SequenceSpec, make_sequence
from siamattn_ros.data.seqio import read_sequence, write_sequence, list_sequences

__all__ = ["Sequence", "SequenceSpec", "make_sequence", "read_sequence", "write_sequence", "list_sequences"]
