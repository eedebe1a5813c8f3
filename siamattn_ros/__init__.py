"""siamattn_ros: SiamAttn single-object tracking as a PyTorch model, an image tracker and a ROS 2 node.

Layers (each usable without the ones above it): ``model`` (pure PyTorch), ``tracker`` (inference over NumPy images,
no ROS), ``ros`` (rclpy adapter), plus ``train`` and ``tools``.
"""
from pkgutil import extend_path

# The generated message modules (siamattn_ros.msg / .srv) are installed by the rosidl build into another
# site-packages directory than these sources; let both halves of the package be found.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
