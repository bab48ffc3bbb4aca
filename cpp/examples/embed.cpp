// Embedding wrn-deploy's C++ library: load the model once, then classify many images.
//
//   embed-example model.onnx a.png b.jpg ...
#include <iostream>

#include "wrn/wrn.hpp"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: embed-example MODEL IMAGE...\n";
        return 2;
    }
    try {
        // Once per process: reads the card, loads the backend (ONNX Runtime or TensorRT).
        std::unique_ptr<wrn::Classifier> clf = wrn::Classifier::open(argv[1]);
        const wrn::Card& card = clf->card();
        // Per request: decode + resize/crop exactly as the Python side does, infer, rank.
        for (int i = 2; i < argc; ++i) {
            wrn::Image img = wrn::load_image(argv[i], card);
            wrn::Prediction p = clf->classify({img}, 1).at(0);
            std::cout << argv[i] << ": " << card.classes[p.top[0].index] << " (" << p.top[0].probability << ")\n";
        }
    } catch (const wrn::Error& e) {  // every problem is one line for the user
        std::cerr << "error: " << e.what() << "\n";
        return 2;
    }
    return 0;
}
