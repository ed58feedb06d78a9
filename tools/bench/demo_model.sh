# The `models:` block of a bench manifest: the demo CNN (models/demo.onnx, 64-pixel input,
# the Grad-CAM layer of its last block). Source this file, then write "$(demo_model_yaml)" into
# a manifest; ROOT must name the checkout.
demo_model_yaml() {
  cat <<YAML
models:
  demo-cnn:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
    cam_layer: /block3/relu/Relu_output_0
YAML
}
